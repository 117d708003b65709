"""The review queue and the review page, in the admin.

ReviewAdmin keeps the record of who claimed and decided what (read-only), and carries the
reviewers' pages as custom views: the queue, a draft beside its sources with the automatic
checks, claim / release / decide, and the diff between two versions. Every write goes through
reviews.services; the views only read, call a service and say what happened.

"Review queue" in the admin index is a proxy model whose changelist is the queue page.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from jobs import policy
from jobs.models import JobStatus, ReportTemplate
from jobs.selectors import job_events, report_attempt, report_versions
from reportdesk.admin import ReadOnlyAdminMixin, WorkspaceScopedAdmin, admin_log_change
from reportdesk.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from reportdesk.models import Workspace

from . import services
from .checks import cited_ids_by_place
from .diff import report_diff
from .forms import DecisionForm
from .models import CHECKLIST, Review, ReviewComment, ReviewQueue
from .presentation import comment_fields, report_view
from .selectors import (
    attempt_report,
    attempt_sources,
    checks_for_attempt,
    holder_of,
    job_for_review,
    review_queue,
    reviews_anywhere,
)


class ReviewCommentInline(admin.TabularInline):
    model = ReviewComment
    extra = 0
    fields = ["author", "section", "body", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _age(delta: dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _sla_tone(delta: dt.timedelta) -> str:
    """ok under half the review SLA, due under the whole of it, overdue past it."""
    share = delta / dt.timedelta(hours=settings.REVIEW_SLA_HOURS)
    return "ok" if share < 0.5 else "due" if share < 1 else "overdue"


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdminMixin, WorkspaceScopedAdmin):
    workspace_path = "job__workspace_id"
    list_display = ["job", "version", "reviewer", "decision", "claimed_at", "decided_at"]
    list_filter = ["decision"]
    list_select_related = ["job", "reviewer", "attempt"]
    search_fields = ["job__public_id", "reviewer__username"]
    inlines = [ReviewCommentInline]

    @admin.display(description="version", ordering="attempt__version")
    def version(self, obj):
        return obj.attempt.version


    # --- The reviewers' pages ------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        mine = [
            path("queue/", view(self.queue_view), name="reviews_review_queue"),
            path("draft/<str:public_id>/", view(self.draft_view), name="reviews_review_draft"),
            path("draft/<str:public_id>/claim/", view(require_POST(self.claim_view)), name="reviews_review_claim"),
            path("draft/<str:public_id>/release/", view(require_POST(self.release_view)), name="reviews_review_release"),
            path("draft/<str:public_id>/decide/", view(require_POST(self.decide_view)), name="reviews_review_decide"),
            path("draft/<str:public_id>/diff/", view(self.diff_view), name="reviews_review_diff"),
        ]
        return mine + super().get_urls()

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def _job(self, request, public_id):
        try:
            return job_for_review(user=request.user, public_id=public_id)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc

    def queue_view(self, request):
        if not reviews_anywhere(request.user):
            raise DjangoPermissionDenied("You do not review reports in any workspace.")
        now = timezone.now()
        template = request.GET.get("template", "")
        workspace = request.GET.get("workspace", "")
        rows = []
        for job in review_queue(user=request.user, template=template, workspace=workspace, now=now):
            waited = now - job.ready_at
            rows.append({
                "job": job,
                "age": _age(waited),
                "tone": _sla_tone(waited),
                "own": job.requested_by_id == request.user.pk,
                "mine": job.claimed_by_id == request.user.pk,
            })
        ids = policy.reviewable_workspace_ids(request.user)
        workspaces = Workspace.objects.all() if ids is None else Workspace.objects.filter(pk__in=ids)
        return TemplateResponse(request, "admin/reviews/queue.html", self._context(
            request,
            title="Review queue",
            rows=rows,
            templates=ReportTemplate.objects.order_by("name"),
            workspaces=workspaces.order_by("name"),
            selected_template=template,
            selected_workspace=workspace,
            sla_hours=settings.REVIEW_SLA_HOURS,
            claim_minutes=settings.REVIEW_CLAIM_MINUTES,
        ))

    def draft_view(self, request, public_id, form=None):
        job = self._job(request, public_id)
        versions = report_versions(job=job)
        try:
            version = int(request.GET.get("version") or 0) or None
        except ValueError:
            version = None
        if version is not None and version not in versions:
            raise Http404(f"Report {job.public_id} has no version {version}.")
        return TemplateResponse(request, "admin/reviews/review.html", self._context(
            request, **self._draft(request, job, versions=versions, version=version or job.version or None, form=form)
        ))

    def _draft(self, request, job, *, versions, version, form):
        now = timezone.now()
        holder = holder_of(job=job, now=now)
        actions = policy.allowed_actions(job, request.user)
        context = {
            "title": f"Review {job.public_id}",
            "job": job,
            "state": policy.job_state(job, request.user, now=now),
            "versions": versions,
            "holder": holder,
            "holder_is_me": holder is not None and holder.reviewer_id == request.user.pk,
            "own_report": job.requested_by_id == request.user.pk,
            "is_operator": policy.is_operator(request.user, job.workspace_id),
            "can_review": policy.APPROVE in actions,
            "timeline": list(job_events(job=job)),
            "reviews": job.reviews.select_related("reviewer", "attempt").prefetch_related("comments").order_by("created_at"),
            "checklist": CHECKLIST,
            "claim_minutes": settings.REVIEW_CLAIM_MINUTES,
        }
        if not versions:
            return context
        attempt = report_attempt(job=job, version=version)
        report = attempt_report(attempt=attempt)
        sources = attempt_sources(attempt=attempt)
        checks = checks_for_attempt(attempt=attempt, report=report, sources=sources)
        cited = {sid for _, sid in cited_ids_by_place(report or {})}
        view = report_view(report=report, checks=checks, sources=sources, cited=cited)
        is_current = version == job.version and job.status == JobStatus.NEEDS_REVIEW
        context.update(
            version=version,
            attempt=attempt,
            checks=checks,
            report=view,
            is_current=is_current,
        )
        if version > 1:
            before = attempt_report(attempt=report_attempt(job=job, version=version - 1))
            context["diff"] = report_diff(before or {}, report or {}, old_version=version - 1, new_version=version)
        if is_current and context["can_review"] and (holder is None or context["holder_is_me"]):
            form = form or DecisionForm(initial={"version": version}, sections=comment_fields(report))
            for part in view.parts:
                if part.comment_field in form.fields:
                    part.comment_input = form[part.comment_field]
            context["form"] = form
        return context

    def claim_view(self, request, public_id):
        job = self._job(request, public_id)
        try:
            review = services.review_claim(job=job, reviewer=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:reviews_review_queue")
        self.message_user(
            request, f"You hold {job.public_id} until {review.claim_expires_at:%H:%M} UTC.", messages.SUCCESS
        )
        return redirect("admin:reviews_review_draft", public_id=job.public_id)

    def release_view(self, request, public_id):
        job = self._job(request, public_id)
        try:
            services.review_release(job=job, reviewer=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:reviews_review_draft", public_id=job.public_id)
        self.message_user(request, f"Released {job.public_id} back to the queue.", messages.SUCCESS)
        return redirect("admin:reviews_review_queue")

    def decide_view(self, request, public_id):
        job = self._job(request, public_id)
        if not job.version:
            raise Http404(f"Report {job.public_id} has no draft to decide on.")
        report = attempt_report(attempt=report_attempt(job=job, version=job.version))
        sections = comment_fields(report)
        form = DecisionForm(request.POST, sections=sections)
        if not form.is_valid():
            return self.draft_view(request, public_id, form=form)
        data = form.cleaned_data
        try:
            job = services.review_decide(
                job=job,
                reviewer=request.user,
                decision=data["decision"],
                comment=data["comment"],
                override_reason=data["override_reason"],
                checklist=list(data["checklist"]),
                section_comments=form.section_comments(),
                version=data["version"],
            )
        except ValidationFailed as exc:
            form.add_service_errors(exc.fields, exc.message)
            return self.draft_view(request, public_id, form=form)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect("admin:reviews_review_draft", public_id=job.public_id)
        done = {
            "approve": f"Approved version {data['version']} of {job.public_id}: the report is completed.",
            "reject": f"Rejected {job.public_id}: it will not be delivered.",
            "request_revision": f"Asked for a revision of {job.public_id}: version {data['version'] + 1} is being written.",
        }[data["decision"]]
        admin_log_change(request, [job], done)
        self.message_user(request, done, messages.SUCCESS)
        return redirect("admin:reviews_review_queue")

    def diff_view(self, request, public_id):
        job = self._job(request, public_id)
        versions = report_versions(job=job)
        if len(versions) < 2:
            raise Http404(f"Report {job.public_id} has only one version.")
        try:
            new = int(request.GET.get("to") or versions[-1])
            old = int(request.GET.get("from") or new - 1)
        except ValueError:
            raise Http404("Choose two versions of this report.") from None
        if old not in versions or new not in versions:
            raise Http404(f"Report {job.public_id} has versions {', '.join(map(str, versions))}.")
        before = attempt_report(attempt=report_attempt(job=job, version=old)) or {}
        after = attempt_report(attempt=report_attempt(job=job, version=new)) or {}
        return TemplateResponse(request, "admin/reviews/diff.html", self._context(
            request,
            title=f"{job.public_id}: version {old} → {new}",
            job=job,
            versions=versions,
            diff=report_diff(before, after, old_version=old, new_version=new),
        ))


@admin.register(ReviewQueue)
class ReviewQueueAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The queue's place in the admin index; its changelist is the queue page."""

    def has_view_permission(self, request, obj=None):
        return reviews_anywhere(request.user)

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:reviews_review_queue")
