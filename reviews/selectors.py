"""Reads for review: the queue, one job as a reviewer may see it, and a draft's checks."""

from __future__ import annotations

import datetime as dt

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs import policy
from jobs.selectors import attempt_search_urls
from jobs.models import Artifact, ArtifactKind, AttemptWebPage, JobAttempt, JobStatus, ReportJob
from jobs.rendering import ReportFormatError, parse_report_json
from reportdesk.errors import NotFound, PermissionDenied
from sources.models import SourceStatus
from sources.selectors import manifest_entries, manifest_entries_prefetch

from .checks import ReviewChecks, SourceRef, WebPageRef, missing_report, run_checks
from .models import Review

def reviews_anywhere(user) -> bool:
    ids = policy.reviewable_workspace_ids(user)
    return ids is None or bool(ids)


def open_claims(*, now: dt.datetime | None = None) -> QuerySet[Review]:
    """Claims that hold a draft now: neither decided nor released, not expired, on a job that
    still needs review (a claim on a draft that expired lapsed with it)."""
    return Review.objects.filter(
        decided_at__isnull=True, released_at__isnull=True, claim_expires_at__gt=now or timezone.now(),
        job__status=JobStatus.NEEDS_REVIEW,
    )


def review_queue(*, user, template: str = "", workspace: str = "", now: dt.datetime | None = None) -> QuerySet[ReportJob]:
    """Drafts waiting for review in the user's review workspaces, oldest first, each with who
    holds its claim (`claimed_by`, `claim_expires_at`) and when it became ready (`ready_at`)."""
    now = now or timezone.now()
    qs = ReportJob.objects.filter(status=JobStatus.NEEDS_REVIEW, archived_at__isnull=True)
    ids = policy.reviewable_workspace_ids(user)
    if ids is not None:
        qs = qs.filter(workspace_id__in=ids)
    if template:
        qs = qs.filter(template__slug=template)
    if workspace:
        qs = qs.filter(workspace__slug=workspace)
    holder = open_claims(now=now).filter(job=OuterRef("pk")).order_by("-claimed_at")
    return (
        qs.select_related("template", "workspace", "requested_by")
        .annotate(
            claimed_by=Subquery(holder.values("reviewer__username")[:1]),
            claimed_by_id=Subquery(holder.values("reviewer_id")[:1]),
            claim_expires_at=Subquery(holder.values("claim_expires_at")[:1]),
            ready_at=Coalesce("finished_at", "created_at"),
        )
        .order_by("ready_at", "id")
    )


def review_queue_for(*, user, now: dt.datetime, **filters) -> QuerySet[ReportJob]:
    """The queue as a reviewer works it: what `review_queue` holds less their own requests,
    with what each row shows (the job's sources, the job it reruns) loaded at once."""
    return (
        review_queue(user=user, now=now, **filters)
        .exclude(requested_by=user)
        .select_related("rerun_of", "source_manifest")
        .prefetch_related(manifest_entries_prefetch("source_manifest__entries"))
    )


def queue_item(*, job: ReportJob, now: dt.datetime) -> dict:
    """One row of the queue: the job, how long it has waited, and who holds its claim."""
    return {
        "job": job,
        "ready_at": job.ready_at,
        "waiting_seconds": max(0, int((now - job.ready_at).total_seconds())),
        "claim": {"reviewer": job.claimed_by, "expires_at": job.claim_expires_at} if job.claimed_by else None,
    }


def job_for_review(*, user, public_id: str) -> ReportJob:
    """The job as a reviewer opens it: another workspace's job does not exist for them (404),
    and a member whose role does not review is refused (403)."""
    job = (
        ReportJob.objects.select_related("template", "workspace", "requested_by", "current_attempt")
        .filter(public_id=public_id)
        .first()
    )
    role = policy.role_in(user, job.workspace_id) if job else None
    if job is None or role is None:
        raise NotFound(f"No report {public_id}.")
    if role not in policy.REVIEW_ROLES:
        raise PermissionDenied(f"Your role ({role}) in {job.workspace.slug} does not review reports.")
    return job


def holder_of(*, job: ReportJob, now: dt.datetime | None = None) -> Review | None:
    return open_claims(now=now).filter(job=job).select_related("reviewer").first()


def attempt_report(*, attempt: JobAttempt) -> dict | None:
    """The attempt's structured report, or None when none is stored (or it is unreadable)."""
    content = (
        Artifact.objects.filter(attempt=attempt, kind=ArtifactKind.STRUCTURED_JSON).values_list("content", flat=True).first()
    )
    if content is None:
        return None
    try:
        return parse_report_json(content)
    except ReportFormatError:
        return None


def attempt_sources(*, attempt: JobAttempt) -> list[SourceRef]:
    return [
        SourceRef(
            sid=entry.sid,
            title=entry.item.title or entry.item.url or entry.sid,
            text=entry.item.text,
            url=entry.item.url,
            published_at=entry.item.published_at,
            readable=entry.item.status == SourceStatus.READY,
            error=entry.item.error,
        )
        for entry in manifest_entries(manifest_id=attempt.manifest_id)
    ]


def attempt_web_pages(*, attempt: JobAttempt) -> list[WebPageRef]:
    return [
        WebPageRef(url=page.url, title=page.item.title, text=page.item.text,
                   readable=page.item.status == SourceStatus.READY, error=page.item.error)
        for page in AttemptWebPage.objects.filter(attempt=attempt).select_related("item")
    ]


def checks_for_attempt(
    *, attempt: JobAttempt, report: dict | None = None, sources: list[SourceRef] | None = None
) -> ReviewChecks:
    """Every automatic check on the draft `attempt` produced, against the manifest it was
    written from. Freshness is judged as of the job's creation. Pass `report` and `sources`
    when already loaded."""
    job = attempt.job
    template = attempt.run_template(job.template)
    report = attempt_report(attempt=attempt) if report is None else report
    if report is None:
        results = missing_report("No structured report is stored for this draft, so nothing could be checked.")
    else:
        results = run_checks(
            report=report,
            sources=attempt_sources(attempt=attempt) if sources is None else sources,
            required_sections=template.required_sections or (),
            freshness_days=template.freshness_days,
            as_of=job.created_at,
            web_search=template.web_search,
            web_search_domains=template.web_search_domains or (),
            # Without web search nothing was searched or fetched: spare the queries.
            search_urls=attempt_search_urls(attempt=attempt) if template.web_search else (),
            web_pages=attempt_web_pages(attempt=attempt) if template.web_search else (),
        )
    return ReviewChecks(
        results=results, freshness_days=template.freshness_days, evaluated_at=timezone.now(), version=attempt.version
    )
