"""The operator console: the Django admin for jobs and what hangs off them.

The job list is scoped in `get_queryset` (WorkspaceScopedAdmin) with its related rows
joined, so it costs a fixed number of queries whatever the row count, and it never counts a
huge table in full. The job page is read-only: state changes only through the actions and buttons here,
which call jobs.services; what a person may do is asked of jobs.policy, and the services'
refusals (ApplicationError) are turned into messages in one place, `_apply`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django_q.models import Failure, Success

from reportdesk.admin import ReadOnlyAdminMixin, ScopedWorkspaceFilter, WorkspaceScopedAdmin, admin_log_change, query_int
from reportdesk.errors import ApplicationError, NotFound
from reportdesk.formatting import duration, span

from . import dashboard, policy, search, selectors, services
from .admin_journey import JourneyAdminMixin
from .breaker import breaker_clear
from .budgets import job_cap_use
from .models import (
    ACTIVE_STATUSES,
    Artifact,
    ArtifactKind,
    IdempotencyKey,
    JobAttempt,
    JobEvent,
    LocalResponse,
    ProviderBreaker,
    ProviderCall,
    ReportJob,
    ReportTemplate,
    ReviewState,
    WebhookDelivery,
)
from .rendering import render_html

# The job page shows model output (sanitised by jobs.rendering); this header is the second
# line of defence: no inline script, handler or javascript: URL would run even if some
# slipped through. The admin's own scripts are static files, so 'self' is all it needs.
CONSOLE_CSP = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows (`SELECT COUNT(*) FROM (… LIMIT CAP + 1)`), so a page of a
    100,000-row table does not pay for a full count; past the cap the list says "10000+"
    and asks for a filter rather than offering page 5,000."""

    CAP = 10_000
    capped = False

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: self.CAP + 1].count()
        self.capped = counted > self.CAP
        return min(counted, self.CAP)


class ArchivedFilter(admin.SimpleListFilter):
    """Archived jobs are out of the way unless asked for."""

    title = "archived"
    parameter_name = "archived"
    DEFAULT = "no"

    def lookups(self, request, model_admin):
        return [("no", "Not archived"), ("yes", "Archived"), ("all", "All")]

    def choices(self, changelist):
        value = self.value() or self.DEFAULT
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or self.DEFAULT
        if value == "no":
            return queryset.filter(archived_at__isnull=True)
        if value == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset


class PublicIdChangeList(ChangeList):
    """The job list links each job by its public id, as every other admin URL of a job does."""

    def url_for_result(self, result):
        return reverse("admin:jobs_reportjob_change", args=[quote(result.public_id)], current_app=self.model_admin.admin_site.name)


def status_badge(job: ReportJob) -> str:
    archived = mark_safe(' <span class="rd-badge rd-archived">archived</span>') if job.archived_at else ""
    return format_html(
        '<span class="rd-badge rd-status-{}">{}</span>{}', job.status, job.get_status_display(), archived
    )


# --- Actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleAction:
    """An action the console offers, one job or many; `service` does the work."""

    name: str
    verb: str
    done: str
    service: Callable
    reason_required: bool = False

    @property
    def permission(self) -> str:
        return f"jobs.{policy.ACTION_PERMISSIONS[self.name]}"


CONSOLE_ACTIONS = {
    action.name: action
    for action in (
        ConsoleAction(policy.CANCEL, "Cancel", "canceled", services.job_cancel, reason_required=True),
        ConsoleAction(policy.RETRY, "Retry", "retried", services.job_retry),
        ConsoleAction(policy.EXPIRE, "Expire", "expired", services.job_expire, reason_required=True),
        ConsoleAction(policy.ARCHIVE, "Archive", "archived", services.job_archive),
        ConsoleAction(policy.UNARCHIVE, "Unarchive", "unarchived", services.job_unarchive),
    )
}
# More than this many jobs in one go is a job for a narrower filter (each is its own transaction).
BULK_LIMIT = 1000
# How many jobs the confirmation page and the messages name in each group.
NAMED = 25


class ActionReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), required=False, max_length=2000,
        help_text="Kept in each job's history.",
    )

    def __init__(self, *args, required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = required
        if required:
            self.fields["reason"].error_messages["required"] = "Say why: the reason is kept in each job's history."


def _names(jobs: list) -> str:
    shown = ", ".join(job.public_id for job in jobs[:NAMED])
    return shown + (f" and {len(jobs) - NAMED} more" if len(jobs) > NAMED else "")


def _plural(count: int) -> str:
    return f"{count} job{'' if count == 1 else 's'}"


# --- The job admin -----------------------------------------------------------------------


@admin.register(ReportJob)
class ReportJobAdmin(JourneyAdminMixin, WorkspaceScopedAdmin):
    # Workspace, requester and template ride under the topic, so the columns a row is scanned
    # by fit a 1440 px screen without a sideways scroll.
    list_display = [
        "public_id", "topic_short", "status_column", "review_column", "last_checked", "age", "runtime", "cost",
        "failure_class",
    ]
    list_display_links = ["public_id"]
    list_filter = [
        "status", "review_state", "failure_class", "template", ScopedWorkspaceFilter, ArchivedFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=public_id", "=provider_response_id", "topic", "requested_by__username"]
    search_help_text = (
        "Public id or provider response id (exact), or words of the topic, the requester's username, "
        "the report's text or a source's title."
    )
    list_select_related = ["workspace", "requested_by", "template"]
    list_per_page = 50
    empty_value_display = "—"
    show_full_result_count = False
    # Facet counts would cost a COUNT per filter option on every page view.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    actions = ["cancel_jobs", "retry_jobs", "expire_jobs", "archive_jobs", "unarchive_jobs"]

    class Media:
        css = {"all": ["reportdesk/console.css"]}

    # -- Columns

    @admin.display(description="topic", ordering="topic")
    def topic_short(self, job):
        topic = job.topic if len(job.topic) <= 70 else job.topic[:69] + "…"
        return format_html(
            '<a href="{}">{}</a><span class="rd-meta">{} · {} · {}</span>',
            reverse("admin:jobs_reportjob_change", args=[quote(job.public_id)]), topic,
            job.workspace.name, job.requested_by.get_username(), job.template.name,
        )

    @admin.display(description="status", ordering="status")
    def status_column(self, job):
        return status_badge(job)

    @admin.display(description="review", ordering="review_state")
    def review_column(self, job):
        if job.review_state == ReviewState.NOT_REQUIRED:
            return "—"
        return format_html('<span class="rd-review rd-review-{}">{}</span>', job.review_state, job.get_review_state_display())

    @admin.display(description="last checked", ordering="last_checked_at")
    def last_checked(self, job):
        if job.last_checked_at is None:
            return "—"
        return format_html('<span title="{}">{}</span>', job.last_checked_at.isoformat(), span(job.last_checked_at, timezone.now()) + " ago")

    @admin.display(description="age", ordering="created_at")
    def age(self, job):
        return format_html('<span title="{}">{}</span>', job.created_at.isoformat(), span(job.created_at, timezone.now()))

    @admin.display(description="runtime", ordering="runtime_seconds")
    def runtime(self, job):
        if job.runtime_seconds:
            return duration(job.runtime_seconds)
        if job.status in ACTIVE_STATUSES and job.started_at:
            return f"{duration((timezone.now() - job.started_at).total_seconds())} so far"
        return "—"

    @admin.display(description="cost", ordering="cost_usd")
    def cost(self, job):
        return "unknown" if job.cost_usd is None else f"${job.cost_usd:.4f}"

    # -- Permissions: the role's Django permission (jobs.policy.ROLE_PERMISSIONS) decides
    # whether the action is offered; the service decides for each job.

    def has_add_permission(self, request):
        return self.may_submit(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _may(self, request, action: str) -> bool:
        return request.user.has_perm(CONSOLE_ACTIONS[action].permission)

    def has_cancel_permission(self, request):
        return self._may(request, policy.CANCEL)

    def has_retry_permission(self, request):
        return self._may(request, policy.RETRY)

    def has_expire_permission(self, request):
        return self._may(request, policy.EXPIRE)

    def has_archive_permission(self, request):
        return self._may(request, policy.ARCHIVE)

    def has_unarchive_permission(self, request):
        return self._may(request, policy.UNARCHIVE)

    # -- Bulk actions (each asks for confirmation first)

    @admin.action(permissions=["cancel"], description="Cancel selected jobs…")
    def cancel_jobs(self, request, queryset):
        return self._bulk(request, queryset, policy.CANCEL)

    @admin.action(permissions=["retry"], description="Retry selected jobs…")
    def retry_jobs(self, request, queryset):
        return self._bulk(request, queryset, policy.RETRY)

    @admin.action(permissions=["expire"], description="Expire selected jobs…")
    def expire_jobs(self, request, queryset):
        return self._bulk(request, queryset, policy.EXPIRE)

    @admin.action(permissions=["archive"], description="Archive selected jobs…")
    def archive_jobs(self, request, queryset):
        return self._bulk(request, queryset, policy.ARCHIVE)

    @admin.action(permissions=["unarchive"], description="Unarchive selected jobs…")
    def unarchive_jobs(self, request, queryset):
        return self._bulk(request, queryset, policy.UNARCHIVE)

    def _bulk(self, request, queryset, action: str):
        spec = CONSOLE_ACTIONS[action]
        if queryset[: BULK_LIMIT + 1].count() > BULK_LIMIT:
            self.message_user(
                request, f"More than {BULK_LIMIT} jobs selected: narrow the list with filters, then try again.",
                messages.WARNING,
            )
            return None
        jobs = list(queryset.order_by("-created_at", "-id"))
        form = ActionReasonForm(request.POST if "post" in request.POST else None, required=spec.reason_required)
        if form.is_bound and form.is_valid():
            self._apply(request, jobs, spec, form.cleaned_data["reason"])
            return None
        hidden = [(helpers.ACTION_CHECKBOX_NAME, pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)]
        hidden += [("action", request.POST.get("action", f"{action}_jobs")), ("select_across", request.POST.get("select_across", "0"))]
        return self._confirmation(request, jobs, spec, form, hidden=hidden, back=request.get_full_path())

    def act_view(self, request, object_id, action):
        """One job's action button: confirm, then act and go back to the job page."""
        spec = CONSOLE_ACTIONS.get(action)
        if spec is None:
            raise Http404(f"No action “{action}”.")
        if not self._may(request, action):
            raise PermissionDenied
        job = self._job(request, object_id)
        if job is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        page = reverse("admin:jobs_reportjob_change", args=[job.public_id])
        form = ActionReasonForm(request.POST if request.method == "POST" else None, required=spec.reason_required)
        if form.is_bound and form.is_valid():
            self._apply(request, [job], spec, form.cleaned_data["reason"])
            return redirect(page)
        return self._confirmation(request, [job], spec, form, hidden=[], back=page)

    def _confirmation(self, request, jobs, spec: ConsoleAction, form, *, hidden, back):
        """What will change and what will be skipped, and why (jobs.policy's words)."""
        changing, skipped = [], defaultdict(list)
        for job in jobs:
            if spec.name in policy.allowed_actions(job, request.user):
                changing.append(job)
            else:
                skipped[policy.why_not(job, request.user, spec.name)].append(job)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{spec.verb} jobs",
            "spec": spec,
            "form": form,
            "hidden": hidden,
            "back": back,
            "changing": changing[:NAMED],
            "changing_count": len(changing),
            "changing_more": max(len(changing) - NAMED, 0),
            "skipped": [
                {"reason": reason, "jobs": group[:NAMED], "count": len(group), "more": max(len(group) - NAMED, 0)}
                for reason, group in skipped.items()
            ],
            "skipped_count": sum(len(group) for group in skipped.values()),
            "single": jobs[0] if len(jobs) == 1 and not hidden else None,
        }
        return TemplateResponse(request, "admin/jobs/reportjob/action_confirmation.html", context)

    def _apply(self, request, jobs: list[ReportJob], spec: ConsoleAction, reason: str) -> None:
        """Run the service for each job and say what happened to each. The one place where
        the services' refusals become messages."""
        changed, unchanged, refused = [], [], defaultdict(list)
        for job in jobs:
            before = (job.status, job.archived_at)
            try:
                after = spec.service(job=job, actor=request.user, reason=reason)
            except ApplicationError as error:
                refused[error.message].append(job)
                continue
            (changed if (after.status, after.archived_at) != before else unchanged).append(job)
        if changed:
            admin_log_change(request, changed, f"{spec.verb}: {reason}" if reason else spec.verb)
            self.message_user(request, f"{spec.done.capitalize()} {_plural(len(changed))}: {_names(changed)}.", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"Already {spec.done}, nothing changed: {_names(unchanged)}.", messages.INFO)
        for message, group in refused.items():
            self.message_user(request, f"Skipped {_plural(len(group))} ({_names(group)}): {message}", messages.WARNING)

    # -- Pages

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("metrics/", self.admin_site.admin_view(self.metrics_view), name="jobs_metrics"),
            path("<path:object_id>/act/<str:action>/", self.admin_site.admin_view(self.act_view), name="%s_%s_act" % info),
            *super().get_urls(),
        ]

    def get_search_results(self, request, queryset, search_term):
        # Django's own search (ids, topic, requester), or the report's text and source titles.
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if not search_term.strip():
            return found, may_have_duplicates
        return found | search.jobs_matching_text(queryset, search_term), may_have_duplicates

    def changelist_view(self, request, extra_context=None):
        # The list is the console's work surface: its columns get the width the app sidebar
        # would take (every other page keeps the sidebar).
        return super().changelist_view(request, {"is_nav_sidebar_enabled": False, **(extra_context or {})})

    def get_changelist(self, request, **kwargs):
        return PublicIdChangeList

    def get_object(self, request, object_id, from_field=None):
        # Django's own views on one job (its history) find it the way the job page does.
        return self._job(request, object_id)

    def _job(self, request, object_id) -> ReportJob | None:
        """A job the person may see, by its public id: every admin URL of a job names it so."""
        return (
            self.get_queryset(request)
            .select_related("workspace", "requested_by", "template", "current_attempt")
            .filter(public_id=unquote(str(object_id)))
            .first()
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The job page: state, why it is (not) moving, history, attempts, sources, report."""
        job = self._job(request, object_id)
        if job is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        now = timezone.now()
        state = policy.job_state(job, request.user, now=now)
        buttons = [
            {"action": name, "label": CONSOLE_ACTIONS[name].verb, "url": reverse("admin:jobs_reportjob_act", args=[job.public_id, name])}
            for name in state.actions
            if name in CONSOLE_ACTIONS and self._may(request, name)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Job {job.public_id}",
            "subtitle": job.topic,
            "job": job,
            "state": state,
            "status_badge": status_badge(job),
            "buttons": buttons,
            "facts": selectors.job_diagnosis(job=job, now=now),
            "timeline": selectors.job_timeline(job=job),
            "attempts": selectors.job_attempts(job=job),
            "entries": selectors.job_source_entries(job=job),
            "report": self._report(request, job),
            "tasks": self._task_links(request, job),
            "review_url": reverse("admin:reviews_review_draft", args=[job.public_id])
            if job.version and policy.may_review_in(request.user, job.workspace_id) else "",
            "runtime": duration(job.runtime_seconds) if job.runtime_seconds else "—",
            "cap_use": job_cap_use(job=job),
            "has_view_permission": True,
            "original": job,
            **self.journey_context(request, job, state),
        }
        response = TemplateResponse(request, "admin/jobs/reportjob/console.html", context)
        response["Content-Security-Policy"] = CONSOLE_CSP
        return response

    def _report(self, request, job) -> dict:
        """The chosen version of the report as sanitised HTML, and the versions to switch to."""
        versions = selectors.report_versions(job=job)
        if not versions:
            return {"versions": [], "html": "", "version": None}
        wanted = query_int(request.GET.get("version"))
        version = wanted if wanted in versions else versions[-1]
        try:
            artifact, version = selectors.report_artifact(job=job, kind=ArtifactKind.RENDERED_HTML, version=version)
            html = artifact.content
        except NotFound:
            # Older drafts may lack the stored HTML; render_html is the only way to make it.
            html = render_html(selectors.report_markdown(job=job, version=version))
        # jobs.rendering.render_html's output: no scripts, handlers, styles or non-web links.
        return {"versions": versions, "version": version, "html": mark_safe(html)}

    def _task_links(self, request, job) -> dict:
        records = selectors.job_task_records(job=job)
        query = urlencode({"name": records["name"]})
        links = []
        for model, label in ((Success, "Successful runs"), (Failure, "Failed runs")):
            if self.admin_site.is_registered(model) and self.admin_site.get_model_admin(model).has_view_permission(request):
                links.append((label, f"{reverse(f'admin:django_q_{model._meta.model_name}_changelist')}?{query}"))
        if policy.operates_anywhere(request.user):
            links.append(("Queued tasks", f"{reverse('admin:workers')}#queue"))
        return {**records, "links": links}

    def metrics_view(self, request):
        """The metrics dashboard (jobs.dashboard), for whoever may see jobs."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return dashboard.metrics_page(request, admin_site=self.admin_site, opts=self.opts)


# --- Templates ---------------------------------------------------------------------------


@admin.register(ReportTemplate)
class ReportTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "report_type", "model", "mode", "review_required", "max_runtime_minutes", "is_active"]
    list_filter = ["report_type", "mode", "review_required", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {
            "fields": ["name", "slug", "report_type", "description", "is_active"],
            "description": "A report under way keeps the template as it was when its attempt began: an edit applies "
            "to the reports still waiting to start and to those submitted, retried or revised after it. The cost cap "
            "and the runtime limit are the exceptions: they apply at once, to every report of the template.",
        }),
        ("What to write", {"fields": ["instructions", "required_sections", "output_schema"]}),
        ("How to run it", {"fields": ["model", "reasoning_effort", "mode", "follow_up_round", "web_search", "web_search_domains", "max_runtime_minutes"]}),
        ("Budget", {"fields": ["cost_cap_usd", "max_output_tokens", "max_tool_calls"]}),
        ("Review and delivery", {"fields": ["review_required", "local_drafts_complete", "useful_window_hours", "freshness_days"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Jobs refer to a template by slug in their history and the API: keep it stable.
        return ["slug"] if obj is not None else []

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    def has_delete_permission(self, request, obj=None):
        # Retire a template (is_active) instead: jobs keep pointing at it.
        return False


@admin.register(ProviderBreaker)
class ProviderBreakerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Provider holds (the circuit breaker): read-only, cleared through its service."""

    list_display = ["scope", "status", "code", "opened_at", "next_probe_at", "probes", "backoff_until", "cleared_at", "cleared_how"]
    readonly_fields = [f.name for f in ProviderBreaker._meta.fields]
    actions = ["clear_hold"]

    @admin.display(description="status")
    def status(self, breaker):
        return "on hold" if breaker.is_open else "calls allowed"

    @admin.action(description="Clear the hold: resume provider calls")
    def clear_hold(self, request, queryset):
        for breaker in queryset:
            try:
                cleared = breaker_clear(scope=breaker.scope, actor=request.user)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
                return
            self.message_user(request, f"{breaker.scope}: {'provider calls resume' if cleared else 'was not on hold'}.")

    def has_view_permission(self, request, obj=None):
        return policy.may_clear_provider_hold(request.user)

    def has_module_permission(self, request):
        return policy.may_clear_provider_hold(request.user)


# --- The records around a job (read-only) -------------------------------------------------


class LargeTableMixin:
    """Tables that grow with every job: no full counts."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdminMixin, LargeTableMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["at", "job", "actor_kind", "actor_name", "action", "from_status", "to_status", "reason"]
    list_filter = ["actor_kind"]
    search_fields = ["=job__public_id", "=action", "actor_name"]
    list_select_related = ["job"]


@admin.register(JobAttempt)
class JobAttemptAdmin(ReadOnlyAdminMixin, LargeTableMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "number", "reason", "status", "version", "provider_retries", "created_at"]
    list_filter = ["reason", "status"]
    search_fields = ["=job__public_id"]
    list_select_related = ["job"]


@admin.register(ProviderCall)
class ProviderCallAdmin(ReadOnlyAdminMixin, LargeTableMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["provider_response_id", "job", "step", "provider", "model", "status", "polls", "cost_usd", "created_at"]
    list_filter = ["provider", "status"]
    search_fields = ["=provider_response_id", "=job__public_id"]
    list_select_related = ["job"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdminMixin, LargeTableMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "attempt", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=job__public_id"]
    list_select_related = ["job", "attempt__job"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["key", "user", "job", "created_at"]
    list_select_related = ["user", "job"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = ["webhook_id", "event_type", "response_id", "received_at"]
    search_fields = ["=webhook_id", "=response_id"]


@admin.register(LocalResponse)
class LocalResponseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "model", "created_at", "completes_at", "cancelled_at", "fault"]
