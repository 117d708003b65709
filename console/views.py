"""Pages of the admin site that belong to no model: the workers page, and the refusal page
every admin view's PermissionDenied ends on."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views import defaults

from jobs import policy

from .selectors import workers_overview


def workers_view(request):
    """Worker clusters, queue depth, the dispatcher's heartbeat and the jobs waiting for a
    worker: what Flower's or Sidekiq's Busy / Queues pages give, for operators."""
    if not policy.operates_anywhere(request.user):
        raise PermissionDenied("The workers page is for operators.")
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Workers and queues",
        "now": now,
        "o": workers_overview(workspace_ids=policy.operated_workspace_ids(request.user), now=now),
    }
    return TemplateResponse(request, "admin/console/workers.html", context)


def permission_denied(request, exception):
    """handler403: in the admin, a page in the admin's frame that says why and where to go;
    elsewhere Django's own."""
    if not request.path.startswith(reverse("admin:index")) or not request.user.is_authenticated:
        return defaults.permission_denied(request, exception)
    reason = str(exception) if exception and str(exception) else "Your role does not include this page."
    links = [("Home", reverse("admin:index"))]
    match = request.resolver_match
    # The review pages and a job's action URLs name a job its workspace's members may read.
    job_id = None
    if match and match.url_name.startswith("reviews_review_"):
        job_id = match.kwargs.get("public_id")
    elif match and match.url_name == "jobs_reportjob_act":
        job_id = match.kwargs.get("object_id")
    if job_id:
        links.insert(0, ("The job page", reverse("admin:jobs_reportjob_change", args=[job_id])))
    context = {**admin.site.each_context(request), "title": "Not open to you", "reason": reason, "links": links}
    return render(request, "admin/console/refused.html", context, status=403)
