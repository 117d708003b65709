"""`{% sent_about job %}`: what was sent about a job (mails, chat, webhooks), for its page.

A template tag, so the job page shows it without jobs importing this app."""

from django import template

from ..selectors import job_notices

register = template.Library()


@register.inclusion_tag("notifications/sent_about.html")
def sent_about(job):
    return {"lines": job_notices(job=job)}
