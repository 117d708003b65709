"""The product's metrics (DESIGN.md, "Metrics"), for the admin dashboard and /api/v1/metrics/.

Every figure is about one cohort: the jobs *submitted* in the window [since, until), in the
given workspaces. A report submitted in the window is followed to wherever it is now, so a
figure never mixes jobs from different periods. The cost is a fixed number of queries
whatever the window or the number of jobs: aggregates in the database, and percentiles in
Python over bounded `values_list` reads (a window's jobs, not the whole table).

Definitions (the API documents the same):
- cost_per_completed_report_usd: everything the cohort cost (failed and rejected work
  included: that spend bought no report) divided by the number of completed reports.
- runtime_seconds: `runtime_seconds` of jobs that produced a deliverable draft (completed or
  needs_review).
- queued_seconds: from submit to the moment a worker first picked the job up (the first
  attempt's `started_at`).
- model_calls_per_report: provider calls, over all attempts, per job that produced a draft.
- retry_rate_by_failure_class: of the jobs that failed with a class, the share on which an
  operator or requester then started a retry attempt (a retry belongs to the failure just
  before it).
- review.time_to_first_claim_seconds / time_to_decision_seconds: from the draft being ready
  (its attempt finished) to the first claim on it / to the decision on it.
- review.rejection_rate: rejections among all review decisions.
- review.revision_rounds_per_report: revision attempts per job that produced a draft.
- abandoned_jobs: completed reports never opened nor exported, finished more than
  ABANDONED_AFTER before `until`.
- export_rate: completed reports that were exported, over completed reports.
- Percentiles interpolate linearly between closest ranks (numpy's default).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from reportdesk.errors import ValidationFailed
from reportdesk.models import Workspace
from reviews.models import Decision, Review
from sources.models import ManifestEntry, SourceStatus

from .policy import visible_workspace_ids
from .models import (
    AttemptReason,
    JobAttempt,
    JobEvent,
    JobStatus,
    ProviderCall,
    ReportJob,
)

ABANDONED_AFTER = dt.timedelta(days=7)
# The moments a window may start and end at. Its edges are moved by up to a week
# (ABANDONED_AFTER), by a default window's 30 days and by a time zone's offset, and its days
# are stepped through one by one: the calendar's first and last years (1 and 9999) have no
# room for that, and no report was written in them. The API and the dashboard refuse the rest.
WINDOW_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
WINDOW_LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
DRAFTED_STATUSES = (JobStatus.COMPLETED, JobStatus.NEEDS_REVIEW)


def metrics_for(*, user, workspace: str, since: dt.datetime, until: dt.datetime) -> dict:
    """The metrics a person may see: their workspaces, or the one named by slug among them."""
    workspace_ids = visible_workspace_ids(user)
    if workspace:
        found = Workspace.objects.filter(slug=workspace).values_list("id", flat=True).first()
        if found is None or (workspace_ids is not None and found not in workspace_ids):
            message = f"You have no workspace '{workspace}'."
            raise ValidationFailed(message, fields={"workspace": message})
        workspace_ids = [found]
    return metrics_compute(workspace_ids=workspace_ids, since=since, until=until)


def metrics_compute(*, workspace_ids: list[int] | None, since: dt.datetime, until: dt.datetime) -> dict:
    """The metrics of the jobs submitted in [since, until) in `workspace_ids` (None: all)."""

    def in_window(path: str = "") -> Q:
        """The cohort, seen from a model `path` away from the job (joins, not IN subqueries)."""
        window = Q(**{f"{path}created_at__gte": since, f"{path}created_at__lt": until})
        if workspace_ids is not None:
            window &= Q(**{f"{path}workspace_id__in": list(workspace_ids)})
        return window

    jobs = ReportJob.objects.filter(in_window())

    by_status = {status: 0 for status in JobStatus.values}
    by_status.update(dict(jobs.order_by().values_list("status").annotate(n=Count("id"))))
    submitted = sum(by_status.values())

    completed = Q(status=JobStatus.COMPLETED)
    totals = jobs.aggregate(
        cost=Sum("cost_usd"),
        completed=Count("id", filter=completed),
        exported=Count("id", filter=completed & Q(exported_at__isnull=False)),
        abandoned=Count(
            "id",
            filter=completed
            & Q(first_opened_at__isnull=True, exported_at__isnull=True, finished_at__lt=until - ABANDONED_AFTER),
        ),
        drafted=Count("id", filter=Q(version__gt=0)),
    )
    drafted = totals["drafted"]
    calls = ProviderCall.objects.filter(in_window("job__"), job__version__gt=0).count()

    runtimes = list(jobs.filter(status__in=DRAFTED_STATUSES).values_list("runtime_seconds", flat=True))
    # The first attempt's start less the submit, subtracted in the database: one interval per
    # job to read rather than two timestamps.
    queued = [
        waited.total_seconds()
        for waited in JobAttempt.objects.filter(in_window("job__"), number=1, started_at__isnull=False)
        .annotate(waited=ExpressionWrapper(F("started_at") - F("job__created_at"), output_field=DurationField()))
        .values_list("waited", flat=True)
    ]

    sources = ManifestEntry.objects.filter(in_window("manifest__jobs__")).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(item__status=SourceStatus.FAILED))
    )

    later_attempts = list(
        JobAttempt.objects.filter(in_window("job__"), reason__in=[AttemptReason.RETRY, AttemptReason.REVISION])
        .values_list("job_id", "reason", "created_at")
    )
    failures = list(JobEvent.objects.filter(in_window("job__"), action="failed").values_list("job_id", "at", "details"))
    revisions = sum(1 for _, reason, _ in later_attempts if reason == AttemptReason.REVISION)
    retries = [(job_id, at) for job_id, reason, at in later_attempts if reason == AttemptReason.RETRY]

    return {
        "window": {"since": since.isoformat(), "until": until.isoformat()},
        "jobs": {"submitted": submitted, "by_status": by_status},
        "cost_per_completed_report_usd": _ratio(float(totals["cost"] or 0), totals["completed"], digits=6),
        "runtime_seconds": _spread(runtimes),
        "queued_seconds": _spread(queued),
        "model_calls_per_report": _ratio(calls, drafted),
        "sources": {
            "total": sources["total"],
            "failed": sources["failed"],
            "per_job": _ratio(sources["total"], submitted),
        },
        "retry_rate_by_failure_class": _retry_rates(failures=failures, retries=retries),
        "review": {**_review_figures(in_window("job__")), "revision_rounds_per_report": _ratio(revisions, drafted)},
        "abandoned_jobs": totals["abandoned"],
        "export_rate": _ratio(totals["exported"], totals["completed"]),
        "states_over_time": _states_over_time(jobs, since=since, until=until),
    }


def _retry_rates(*, failures, retries) -> dict[str, float]:
    """Per failure class: retried jobs / failed jobs. Each retry is credited to the job's
    latest failure before it, so a job that failed with X, was retried, then failed with Y
    and was left alone counts as retried for X and not for Y."""
    failures_by_job = defaultdict(list)
    for job_id, at, details in failures:
        failure_class = (details or {}).get("failure_class") or "unknown"
        failures_by_job[job_id].append((at, failure_class))
    retried: set[tuple[int, str]] = set()
    for job_id, retry_at in retries:
        earlier = [f for f in failures_by_job.get(job_id, ()) if f[0] <= retry_at]
        if earlier:
            retried.add((job_id, max(earlier)[1]))
    failed_jobs = defaultdict(set)
    for job_id, events in failures_by_job.items():
        for _, failure_class in events:
            failed_jobs[failure_class].add(job_id)
    return {
        failure_class: round(sum(1 for j in job_ids if (j, failure_class) in retried) / len(job_ids), 4)
        for failure_class, job_ids in sorted(failed_jobs.items())
    }


def _review_figures(window: Q) -> dict:
    reviews = list(
        Review.objects.filter(window).values_list("attempt_id", "attempt__finished_at", "claimed_at", "decided_at", "decision")
    )
    first_claim: dict[int, dt.datetime] = {}
    ready_at: dict[int, dt.datetime | None] = {}
    to_decision = []
    decisions = rejections = 0
    for attempt_id, ready, claimed, decided, decision in reviews:
        ready_at[attempt_id] = ready
        if claimed is not None and (attempt_id not in first_claim or claimed < first_claim[attempt_id]):
            first_claim[attempt_id] = claimed
        if decision:
            decisions += 1
            rejections += decision == Decision.REJECT
            if ready is not None and decided is not None:
                to_decision.append((decided - ready).total_seconds())
    to_claim = [
        (claimed - ready_at[attempt_id]).total_seconds()
        for attempt_id, claimed in first_claim.items()
        if ready_at[attempt_id] is not None
    ]
    return {
        "time_to_first_claim_seconds": _spread(to_claim),
        "time_to_decision_seconds": _spread(to_decision),
        "rejection_rate": _ratio(rejections, decisions),
    }


def _states_over_time(jobs, *, since, until) -> list[dict]:
    """One row per day of the window (days with no jobs included), counts by current status."""
    counts = defaultdict(dict)
    for day, status, n in (
        jobs.annotate(day=TruncDate("created_at")).order_by().values_list("day", "status").annotate(n=Count("id"))
    ):
        counts[day][status] = n
    rows = []
    day = timezone.localtime(since).date()
    last = timezone.localtime(until - dt.timedelta(microseconds=1)).date()
    while day <= last:
        rows.append({"date": day.isoformat(), **{s: counts[day].get(s, 0) for s in JobStatus.values}})
        day += dt.timedelta(days=1)
    return rows


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _spread(values: list[float]) -> dict:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {"p50": None if p50 is None else round(p50, 3), "p95": None if p95 is None else round(p95, 3)}


def _ratio(numerator, denominator, *, digits: int = 4) -> float | None:
    return round(numerator / denominator, digits) if denominator else None
