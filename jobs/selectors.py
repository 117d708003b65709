"""Reads: scoped querysets and report lookups shared by the admin, the API and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone
from django_q.models import Task

from reportdesk.errors import NotFound
from reportdesk.formatting import span
from reviews.models import Review, ReviewComment
from sources.models import ManifestEntry, SourceItem
from sources.selectors import manifest_entries, source_items_in

from .budgets import budget_held
from .worker.lease import dispatcher_is_alive, heartbeat_last_seen
from .models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Artifact,
    ArtifactKind,
    CallStatus,
    JobAttempt,
    JobEvent,
    JobStatus,
    ProviderCall,
    ReportJob,
)
from .policy import visible_workspace_ids


def jobs_visible_to(user) -> QuerySet[ReportJob]:
    """Jobs of the workspaces `user` belongs to (every job for a superuser)."""
    qs = ReportJob.objects.all()
    ids = visible_workspace_ids(user)
    return qs if ids is None else qs.filter(workspace_id__in=ids)


def sources_visible_to(user) -> QuerySet[SourceItem]:
    """Source items of the workspaces `user` belongs to."""
    return source_items_in(visible_workspace_ids(user))


def job_events(*, job: ReportJob) -> QuerySet[JobEvent]:
    return job.events.select_related("actor").order_by("at", "id")


def report_attempt(*, job: ReportJob, version: int | None = None) -> JobAttempt:
    """The attempt that produced report `version` (the latest when None)."""
    attempts = job.attempts.filter(version__isnull=False)
    attempt = attempts.filter(version=version).first() if version else attempts.order_by("-version").first()
    if attempt is None:
        if version:
            raise NotFound(f"Report {job.public_id} has no version {version}.")
        raise NotFound(f"Report {job.public_id} has no draft yet.")
    return attempt


def report_artifact(*, job: ReportJob, kind: str, version: int | None = None) -> tuple[Artifact, int]:
    attempt = report_attempt(job=job, version=version)
    artifact = Artifact.objects.filter(attempt=attempt, kind=kind).first()
    if artifact is None:
        raise NotFound(f"Version {attempt.version} of report {job.public_id} has no {kind}.")
    return artifact, attempt.version


def report_markdown(*, job: ReportJob, version: int | None = None) -> str:
    return report_artifact(job=job, kind=ArtifactKind.REPORT_MARKDOWN, version=version)[0].content


def report_versions(*, job: ReportJob) -> list[int]:
    return list(job.attempts.filter(version__isnull=False).order_by("version").values_list("version", flat=True))


def report_bundle(*, job: ReportJob, version: int | None = None) -> dict:
    """The structured report of one version with its citations and the versions there are:
    the JSON download."""
    artifact, version = report_artifact(job=job, kind=ArtifactKind.STRUCTURED_JSON, version=version)
    try:
        citations = json.loads(report_artifact(job=job, kind=ArtifactKind.CITATIONS, version=version)[0].content)
    except NotFound:
        citations = []
    return {
        "job": job.public_id,
        "version": version,
        "versions": report_versions(job=job),
        "report": json.loads(artifact.content),
        "citations": citations,
    }


# --- The operator console's job page -----------------------------------------------------


def job_attempts(*, job: ReportJob) -> list[JobAttempt]:
    """Every attempt of the job, oldest first, each with its provider calls (two queries)."""
    calls = Prefetch("provider_calls", queryset=ProviderCall.objects.order_by("created_at", "id"))
    return list(job.attempts.select_related("created_by").prefetch_related(calls).order_by("number"))


def job_source_entries(*, job: ReportJob) -> list[ManifestEntry]:
    """The job's current sources (S1…Sn) with their status and errors."""
    return manifest_entries(manifest_id=job.source_manifest_id)


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    who: str
    action: str
    from_status: str = ""
    to_status: str = ""
    from_review_state: str = ""
    to_review_state: str = ""
    reason: str = ""
    details: dict = field(default_factory=dict)
    kind: str = "event"


def job_timeline(*, job: ReportJob) -> list[TimelineEntry]:
    """Operations and review in one chronological list: the job's audit events, and the
    review comments that no event of the same person already carries (a decision's comment
    is part of its event's reason)."""
    events = list(job_events(job=job))
    reasons = defaultdict(list)
    for e in events:
        if e.reason:
            reasons[e.actor_name].append(e.reason)
    entries = [
        TimelineEntry(
            at=e.at, who=e.actor_label, action=e.action, from_status=e.from_status, to_status=e.to_status,
            from_review_state=e.from_review_state, to_review_state=e.to_review_state, reason=e.reason,
            details=e.details or {},
        )
        for e in events
    ]
    for comment in ReviewComment.objects.filter(review__job=job).select_related("author", "review__attempt"):
        name = comment.author.get_username()
        if any(comment.body in reason for reason in reasons[name]):
            continue
        details = {}
        if comment.review.attempt.version:
            details["version"] = comment.review.attempt.version
        if comment.section:
            details["section"] = comment.section
        entries.append(TimelineEntry(at=comment.created_at, who=name, action="commented", reason=comment.body, details=details, kind="comment"))
    return sorted(entries, key=lambda e: e.at)


@dataclass(frozen=True)
class Fact:
    """One line of "why isn't this moving?": tone is ok, info or warn."""

    tone: str
    text: str


def _when(moment: dt.datetime, now: dt.datetime) -> str:
    stamp = timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{stamp} ({span(moment, now)} ago)" if moment <= now else f"{stamp} (in {span(moment, now)})"


def job_diagnosis(*, job: ReportJob, now: dt.datetime | None = None) -> list[Fact]:
    """Why the job is (or is not) moving: the worker's bookkeeping read back as sentences.

    Reads the job (with `current_attempt` and `template` loaded), and either the dispatcher
    heartbeat (two queries) or, for drafts, the open review claim (one).
    """
    now = now or timezone.now()
    facts: list[Fact] = []
    if job.status in TERMINAL_STATUSES:
        if job.status == JobStatus.FAILED:
            way = "retry starts a new attempt" if job.retryable else "it is not retryable: revise the input or rerun"
            facts.append(Fact("info", f"Stopped: failed with {job.failure_class or 'unknown'}; {way}."))
        else:
            facts.append(Fact("info", f"Not moving by design: the job is {job.get_status_display().lower()}; nothing more will happen to it."))
        if job.archived_at:
            facts.append(Fact("info", f"Archived at {_when(job.archived_at, now)}."))
        return facts

    if job.status == JobStatus.NEEDS_REVIEW:
        claim = (
            Review.objects.filter(job=job, decided_at__isnull=True, released_at__isnull=True, claim_expires_at__gte=now)
            .select_related("reviewer")
            .first()
        )
        if claim:
            facts.append(Fact("ok", f"Claimed by {claim.reviewer.get_username()} since {_when(claim.claimed_at, now)}; the claim expires {_when(claim.claim_expires_at, now)}."))
        else:
            since = f" since {_when(job.finished_at, now)}" if job.finished_at else ""
            facts.append(Fact("warn", f"Waiting for a reviewer{since}: nobody has claimed the draft."))
        if job.current_attempt is not None and (edits := job.current_attempt.template_edits(job.template)):
            facts.append(Fact("info", f"The template was edited after the attempt that wrote this draft began ({', '.join(edits)}): the "
                                      "draft is checked by the rules it was written under. A revision takes the edit."))
    elif job.status in ACTIVE_STATUSES:
        attempt = job.current_attempt
        lease_live = job.lease_expires_at is not None and job.lease_expires_at > now
        if lease_live:
            held_since = job.lease_expires_at - dt.timedelta(seconds=settings.LEASE_SECONDS)
            facts.append(Fact("ok", f"A worker holds the job: lease held since {_when(held_since, now)}."))
        elif job.lease_token:
            facts.append(Fact("warn", f"A worker's lease expired {_when(job.lease_expires_at, now)}: that worker stopped; the recovery sweep makes the job due again."))
        if job.next_check_at is None:
            facts.append(Fact("warn", "No check is scheduled; the recovery sweep will schedule one."))
        elif job.next_check_at > now:
            if attempt is not None and attempt.provider_retries and job.status != JobStatus.QUEUED:
                facts.append(Fact("info", f"Retry backoff until {_when(job.next_check_at, now)}: automatic provider retry {attempt.provider_retries} of {settings.PROVIDER_MAX_AUTO_RETRIES} after “{attempt.last_error or 'a transient error'}”."))
            else:
                facts.append(Fact("info", f"Next check at {_when(job.next_check_at, now)}."))
        elif not lease_live:
            facts.append(Fact("warn", f"Waiting for a worker: due since {_when(job.next_check_at, now)}."))
        if attempt is not None and (edits := attempt.template_edits(job.template)):
            facts.append(Fact("info", f"The template was edited after this attempt began ({', '.join(edits)}): the attempt "
                                      "runs as it began. A retry or a revision takes the edit."))
        if held := budget_held(job=job):
            facts.append(Fact("info", f"{held} No new provider call starts until they end; then their cost decides."))
        if job.status == JobStatus.RUNNING:
            checked = _when(job.last_checked_at, now) if job.last_checked_at else "never"
            facts.append(Fact("info", f"Provider response {job.provider_response_id or '(none yet)'}; last checked {checked}."))
            started = (attempt.started_at if attempt else None) or job.created_at
            limit = started + dt.timedelta(minutes=job.template.max_runtime_minutes)
            facts.append(Fact("warn" if limit <= now else "info", f"Times out at {_when(limit, now)} (the template's {job.template.max_runtime_minutes}-minute limit)."))
        seen, alive = heartbeat_last_seen(), dispatcher_is_alive(now=now)
        if seen is None:
            facts.append(Fact("warn", "No worker heartbeat has ever been recorded: is `manage.py qcluster` running?"))
        elif alive:
            facts.append(Fact("ok", f"The dispatcher is alive (last heartbeat {span(seen, now)} ago)."))
        else:
            facts.append(Fact("warn", f"No worker heartbeat: the dispatcher was last seen {_when(seen, now)}. Is `manage.py qcluster` running?"))
    if job.deadline:
        if job.deadline <= now:
            facts.append(Fact("warn", f"The deadline passed {_when(job.deadline, now)}; the expiry sweep will expire the job."))
        else:
            facts.append(Fact("info", f"Deadline {_when(job.deadline, now)}."))
    return facts


def job_task_records(*, job: ReportJob) -> dict:
    """django-q2's records of this job's `advance job <pk>` tasks (one query)."""
    name = f"advance job {job.pk}"
    totals = Task.objects.filter(name=name).aggregate(
        succeeded=Count("id", filter=Q(success=True)), failed=Count("id", filter=Q(success=False)), last=Max("stopped")
    )
    return {"name": name, **totals}


# --- Exports -----------------------------------------------------------------------------


def attempt_source_entries(*, attempt: JobAttempt) -> list[ManifestEntry]:
    """The sources (S1…Sn) of the manifest an attempt ran with (one query)."""
    return list(ManifestEntry.objects.filter(manifest_id=attempt.manifest_id).select_related("item").order_by("position"))


def attempt_decision(*, attempt: JobAttempt) -> Review | None:
    """The review decision made on the draft an attempt wrote, if any (one query)."""
    return (
        Review.objects.filter(attempt=attempt, decided_at__isnull=False)
        .select_related("reviewer")
        .order_by("-decided_at")
        .first()
    )


# --- Following a job ---------------------------------------------------------------------


def job_step(*, job: ReportJob) -> str:
    """Where a running attempt is, in the words of a multi-step run ("Plan", "Research: 3 of 4
    questions still running", "Synthesis"), or "" when no provider step is under way (two
    queries at most)."""
    if job.status not in (JobStatus.PREPARING, JobStatus.RUNNING) or job.current_attempt_id is None:
        return ""
    calls = ProviderCall.objects.filter(attempt_id=job.current_attempt_id, orphan=False).exclude(status=CallStatus.LOST)
    call = calls.order_by("-id").values("step", "request_summary").first()
    if call is None:
        return ""
    step, summary = call["step"], call["request_summary"] or {}
    if step == "plan":
        return "Plan: choosing the research questions"
    if step == "gaps":
        return "Follow-up: finding what the notes leave open"
    if step.startswith("research-"):
        number, of = summary.get("number") or step.split("-", 1)[1], summary.get("of")
        if not isinstance(of, int) or of <= 1:
            return f"Question {number} of {of}" if of else f"Question {number}"
        # The questions run side by side: how many are still at the provider.
        latest = _latest_status_by_step(calls.filter(step__startswith="research-"))
        running = sum(status in CallStatus.IN_FLIGHT for status in latest.values())
        return f"Research: {running} of {of} questions still running" if running else f"Research: all {of} questions answered"
    if step == "synthesize":
        return "Synthesis: writing the report from the research notes"
    return "Writing the report"
def attempt_awaits_retry(*, attempt_id: int) -> bool:
    """Does a step of the attempt wait before it is created again: for its automatic retry,
    its latest call having failed (the create, or the response), or for the reconcile of a
    create that got no answer? One query."""
    latest = _latest_status_by_step(ProviderCall.objects.filter(attempt_id=attempt_id, orphan=False).exclude(status=CallStatus.LOST))
    return any(status in (CallStatus.ERROR, CallStatus.FAILED, CallStatus.UNCONFIRMED) for status in latest.values())


def _latest_status_by_step(calls) -> dict[str, str]:
    """{step: the status of its latest call} for a queryset of provider calls. One query."""
    return dict(calls.order_by("id").values_list("step", "status"))


def attempt_search_urls(*, attempt: JobAttempt) -> set[str]:
    """Every URL the attempt's web searches returned or opened, and every url_citation."""
    urls: set[str] = set()
    for output in ProviderCall.objects.filter(attempt=attempt).values_list("output", flat=True):
        output = output if isinstance(output, dict) else {}
        urls.update(url for url in output.get("web_sources") or () if isinstance(url, str))
        urls.update(
            c["url"] for c in output.get("url_citations") or () if isinstance(c, dict) and isinstance(c.get("url"), str)
        )
    return urls
