"""The requester's pages in the operator console: submit ("Add report job"), edit the request,
follow a job as it moves, revise, rerun, and download the report.

A mixin of jobs.admin.ReportJobAdmin. Every write calls the same jobs.services function the
API calls, and a refusal (ApplicationError) is shown on the form in the service's words;
what a person may do is asked of jobs.policy. Downloads go through jobs.exports, which
records each one. The pages follow a moving job with htmx (served from static files):
the job page polls `live/` and the list polls itself, and both stop once nothing moves.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from reportdesk.admin import query_int
from reportdesk.errors import ApplicationError, NotFound

from . import exports, policy, selectors, services
from .downloads import export_response
from .forms import EditForm, RerunForm, ReviseForm, SubmitForm
from .models import ACTIVE_STATUSES, JobStatus, ReportJob

# How often a page showing a moving job asks again, in seconds.
POLL_SECONDS = 2
SUBMIT_PERMISSION = f"jobs.{policy.ACTION_PERMISSIONS[policy.SUBMIT]}"


class JourneyAdminMixin:
    """Submit, edit, follow, revise, rerun and download, for ReportJobAdmin."""

    def journey_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/live/", view(self.live_view), name="jobs_reportjob_live"),
            path("<path:object_id>/edit/", view(self.edit_view), name="jobs_reportjob_edit"),
            path("<path:object_id>/revise/", view(self.revise_view), name="jobs_reportjob_revise"),
            path("<path:object_id>/rerun/", view(self.rerun_view), name="jobs_reportjob_rerun"),
            path("<path:object_id>/download/<str:fmt>/", view(self.download_view), name="jobs_reportjob_download"),
        ]

    def get_urls(self):
        return [*self.journey_urls(), *super().get_urls()]

    def may_submit(self, request) -> bool:
        return request.user.has_perm(SUBMIT_PERMISSION)

    # -- The job page's part

    def journey_context(self, request, job: ReportJob, state) -> dict:
        """What the job page shows beyond the console: the step, the buttons for a person's
        own actions, downloads, why the request can no longer be edited, and polling."""
        actions = set(state.actions)
        own = [
            (policy.EDIT, "Edit request", "jobs_reportjob_edit"),
            (policy.REVISE, "Revise…", "jobs_reportjob_revise"),
            (policy.RERUN, "Rerun…", "jobs_reportjob_rerun"),
        ]
        more = [
            {"action": name, "label": label, "url": reverse(f"admin:{url}", args=[job.public_id])}
            for name, label, url in own
            if name in actions
        ]
        lock_note = ""
        if job.status in (JobStatus.QUEUED, JobStatus.PREPARING) and policy.EDIT not in actions and job.request_locked_at:
            lock_note = policy.state_refusal(job, policy.EDIT)
        moving = job.status in ACTIVE_STATUSES
        return {
            "more_buttons": more,
            "lock_note": lock_note,
            "step": selectors.job_step(job=job),
            "downloads": download_links(job) if job.version else [],
            "moving": moving,
            "poll_seconds": POLL_SECONDS,
            "live_url": f"{reverse('admin:jobs_reportjob_live', args=[job.public_id])}?shown={job.version}",
        }

    def live_view(self, request, object_id):
        """The moving parts of the job page, for htmx: the summary (which polls again while the
        job moves), and the sections that change with it, swapped out of band; the report too
        once a new version has arrived."""
        response = self.change_view(request, object_id)
        if not isinstance(response, TemplateResponse):
            raise Http404("No such job among yours.")
        shown = request.GET.get("shown", "")
        job = response.context_data["job"]
        response.template_name = "admin/jobs/reportjob/_live.html"
        response.context_data["new_report"] = shown != str(job.version)
        response["Cache-Control"] = "no-store"
        return response

    # -- The list follows its moving rows

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = getattr(response, "context_data", {}).get("cl") if isinstance(response, TemplateResponse) else None
        if cl is None:
            return response
        # Evaluates the page's rows once; the template reuses them.
        cl.rd_moving = any(job.status in ACTIVE_STATUSES for job in cl.result_list)
        cl.rd_poll_seconds = POLL_SECONDS + 1
        if request.headers.get("HX-Request") and not cl.rd_moving:
            response.status_code = 286  # htmx: swap this last answer, then stop polling
        return response

    # -- Submit

    def add_view(self, request, form_url="", extra_context=None):
        """"Add report job": the API's submit as a form, through jobs.services.job_submit."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SubmitForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                job = services.job_submit(**form.submit_arguments())
            except ValidationError as error:  # a limit of the form itself (too many sources)
                form.add_error(None, error)
            except ApplicationError as error:
                form.service_errors(error)
            else:
                self.message_user(request, format_html("Submitted {}: {}", job.public_id, job.input_summary), messages.SUCCESS)
                return redirect(reverse("admin:jobs_reportjob_change", args=[job.public_id]))
        return self._form_page(request, form, title="Add report job", submit_label="Submit report", templates=form.fields["template"].queryset)

    # -- A person's own actions on one job

    def edit_view(self, request, object_id):
        job = self._journey_job(request, object_id)
        why = self._why_not(request, job, policy.EDIT)
        entries = selectors.job_source_entries(job=job)
        form = None
        if not why:
            form = EditForm(request.POST or None, request.FILES or None, user=request.user, job=job, entries=entries)
            if request.method == "POST" and form.is_valid():
                try:
                    services.job_edit(job=job, actor=request.user, **form.edit_arguments())
                except ValidationError as error:  # a limit of the form itself (too many sources)
                    form.add_error(None, error)
                except ApplicationError as error:
                    form.service_errors(error)
                else:
                    self.message_user(request, f"Saved the request of {job.public_id}.", messages.SUCCESS)
                    return self._back(job)
        return self._form_page(request, form, title=f"Edit the request of {job.public_id}", submit_label="Save the request", job=job, refusal=why)

    def revise_view(self, request, object_id):
        job = self._journey_job(request, object_id)
        why = self._why_not(request, job, policy.REVISE)
        form = None
        if not why:
            form = ReviseForm(request.POST or None)
            if request.method == "POST" and form.is_valid():
                try:
                    services.job_revise(job=job, actor=request.user, instructions=form.cleaned_data["instructions"])
                except ApplicationError as error:
                    form.service_errors(error)
                else:
                    self.message_user(request, f"{job.public_id} runs again with your instructions.", messages.SUCCESS)
                    return self._back(job)
        return self._form_page(request, form, title=f"Revise {job.public_id}", submit_label="Run again with these instructions", job=job, refusal=why)

    def rerun_view(self, request, object_id):
        job = self._journey_job(request, object_id)
        why = self._why_not(request, job, policy.RERUN)
        form = None
        if not why:
            form = RerunForm(request.POST or None, request.FILES or None, user=request.user, job=job)
            if request.method == "POST" and form.is_valid():
                try:
                    new_job = services.job_rerun(job=job, actor=request.user, **form.rerun_arguments())
                except ValidationError as error:  # a limit of the form itself (too many sources)
                    form.add_error(None, error)
                except ApplicationError as error:
                    form.service_errors(error)
                else:
                    self.message_user(request, f"Started {new_job.public_id}, a rerun of {job.public_id}.", messages.SUCCESS)
                    return self._back(new_job)
        return self._form_page(request, form, title=f"Rerun {job.public_id}", submit_label="Start the rerun", job=job, refusal=why)

    def download_view(self, request, object_id, fmt):
        """One version of the report as a file (jobs.exports), recorded as an export."""
        job = self._journey_job(request, object_id)
        if fmt not in exports.FORMATS:
            raise Http404(f"No “{fmt}” download; there are {', '.join(exports.FORMATS)}.")
        try:
            export = exports.report_export(
                job=job, actor=request.user, fmt=fmt, version=query_int(request.GET.get("version")),
                record=request.method == "GET",
            )
        except NotFound as error:
            raise Http404(error.message) from error
        return export_response(export)

    # -- Plumbing

    def _journey_job(self, request, object_id) -> ReportJob:
        job = self._job(request, object_id)
        if job is None:
            raise Http404("No such job among yours.")
        return job

    def _why_not(self, request, job, action: str) -> str:
        return "" if action in policy.allowed_actions(job, request.user) else policy.why_not(job, request.user, action)

    def _back(self, job):
        return redirect(reverse("admin:jobs_reportjob_change", args=[job.public_id]))

    def _form_page(self, request, form, *, title: str, submit_label: str, job=None, refusal: str = "", templates=()):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "job": job,
            "refusal": refusal,
            "submit_label": submit_label,
            "templates": templates,
            "media": self.media + form.media if form is not None else self.media,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/jobs/reportjob/request_form.html", context)


def download_links(job: ReportJob, version: int | None = None) -> list[dict]:
    base = reverse("admin:jobs_reportjob_download", args=[job.public_id, "FMT"])
    query = f"?version={version}" if version else ""
    return [
        {"format": fmt, "label": exports.LABELS[fmt], "url": base.replace("/FMT/", f"/{fmt}/") + query}
        for fmt in exports.FORMATS
    ]

