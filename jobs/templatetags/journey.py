"""Template tags for pages outside the job admin that offer a report's downloads (the
review page): the same links as the job page, through jobs.exports."""

from django import template

from jobs.admin_journey import download_links

register = template.Library()


@register.inclusion_tag("admin/jobs/reportjob/_downloads.html")
def report_downloads(job, version=None):
    return {"links": download_links(job, version), "version": version}
