"""jobs.metrics.metrics_compute against crafted data: every figure checked by hand.

The cohort is the jobs of workspace "a" submitted in March 2026 (J1…J9 below); one job
before the window and one in another workspace must not count.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest

from jobs.metrics import metrics_compute, percentile
from jobs.models import AttemptReason, JobAttempt, JobEvent, ReportJob
from reportdesk.models import Role
from sources.models import SourceStatus
from tests.factories import (
    JobEventFactory,
    ProviderCallFactory,
    ReportJobFactory,
    ReviewFactory,
    SourceItemFactory,
    SourceManifestFactory,
    WorkspaceFactory,
    member,
)

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
SINCE = dt.datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = dt.datetime(2026, 3, 31, tzinfo=UTC)


def at(day, hour=10, minute=0, second=0, month=3):
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def sec(base, seconds):
    return base + dt.timedelta(seconds=seconds)


def make_job(workspace, status, created, *, queued_for=None, calls=0, failure_class="", **fields):
    """A job in `status`, submitted at `created`; its first attempt started `queued_for` s later."""
    job = ReportJobFactory(workspace=workspace)
    ReportJob.objects.filter(pk=job.pk).update(status=status, created_at=created, failure_class=failure_class, **fields)
    if queued_for is not None:
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(started_at=sec(created, queued_for))
    job.refresh_from_db()
    for _ in range(calls):
        ProviderCallFactory(attempt=job.current_attempt, job=job)
    return job


def event(job, action, when, **details):
    record = JobEventFactory(job=job, action=action, details=details)
    JobEvent.objects.filter(pk=record.pk).update(at=when)


def draft_ready(job, when, attempt=None):
    attempt = attempt or job.current_attempt
    JobAttempt.objects.filter(pk=attempt.pk).update(finished_at=when)
    attempt.refresh_from_db()
    return attempt


@pytest.fixture
def crafted():
    a = WorkspaceFactory(slug="a")
    b = WorkspaceFactory(slug="b")
    reviewer = member(a, Role.REVIEWER, username="rita")

    def review(job, attempt, claimed, decided=None, decision="", released=None):
        return ReviewFactory(
            job=job, attempt=attempt, reviewer=reviewer, claimed_at=claimed,
            decided_at=decided, decision=decision, released_at=released,
        )

    # J1: completed and exported; 2 sources of which 1 failed; 2 provider calls.
    manifest = SourceManifestFactory(
        workspace=a, items=[SourceItemFactory(workspace=a), SourceItemFactory(workspace=a, status=SourceStatus.FAILED)]
    )
    j1 = ReportJobFactory(workspace=a, source_manifest=manifest)
    ReportJob.objects.filter(pk=j1.pk).update(
        status="completed", created_at=at(2), cost_usd=Decimal("0.30"), runtime_seconds=100, version=1,
        finished_at=at(2, 10, 30), first_opened_at=at(3), exported_at=at(3),
    )
    JobAttempt.objects.filter(pk=j1.current_attempt_id).update(started_at=sec(at(2), 60), version=1)
    j1.refresh_from_db()
    ProviderCallFactory.create_batch(2, attempt=j1.current_attempt, job=j1)
    a1 = draft_ready(j1, at(2, 10, 10))
    review(j1, a1, claimed=sec(a1.finished_at, 600), decided=sec(a1.finished_at, 1200), decision="approve")

    # J2: completed after one revision round (v2); never opened: abandoned (finished 5 March).
    j2 = make_job(a, "completed", at(3), queued_for=120, calls=1, cost_usd=Decimal("0.10"), runtime_seconds=200,
                  version=2, finished_at=at(5))
    j2a1 = draft_ready(j2, at(3, 11))
    j2a2 = JobAttempt.objects.create(job=j2, number=2, reason=AttemptReason.REVISION, manifest=j2.source_manifest,
                                     version=2, finished_at=at(4, 9))
    ProviderCallFactory(attempt=j2a2, job=j2)
    review(j2, j2a1, claimed=sec(j2a1.finished_at, 300), decided=sec(j2a1.finished_at, 900), decision="request_revision")
    review(j2, j2a2, claimed=sec(j2a2.finished_at, 100), released=sec(j2a2.finished_at, 150))
    review(j2, j2a2, claimed=sec(j2a2.finished_at, 200), decided=sec(j2a2.finished_at, 500), decision="approve")

    # J3: a draft waiting for review.
    make_job(a, "needs_review", at(10), queued_for=30, calls=1, cost_usd=Decimal("0.05"), runtime_seconds=300, version=1)

    # J4: failed with provider_error, retried, then failed with timeout and left alone.
    j4 = make_job(a, "failed", at(11), queued_for=45, calls=1, failure_class="timeout", cost_usd=Decimal("0.05"))
    event(j4, "failed", at(11, 12), failure_class="provider_error")
    JobAttempt.objects.create(job=j4, number=2, reason=AttemptReason.RETRY, manifest=j4.source_manifest)
    JobAttempt.objects.filter(job=j4, number=2).update(created_at=at(11, 13))
    event(j4, "failed", at(11, 14), failure_class="timeout")

    # J5: failed with policy_block, not retried.
    j5 = make_job(a, "failed", at(12), queued_for=15, failure_class="policy_block")
    event(j5, "failed", at(12, 11), failure_class="policy_block")

    # J6: failed with provider_error, not retried; never started.
    j6 = make_job(a, "failed", at(13), failure_class="provider_error")
    event(j6, "failed", at(13, 11), failure_class="provider_error")

    # J7: canceled before it started.
    make_job(a, "canceled", at(20))

    # J8: rejected draft.
    j8 = make_job(a, "rejected", at(25), queued_for=75, calls=1, cost_usd=Decimal("0.10"), runtime_seconds=50, version=1)
    j8a1 = draft_ready(j8, at(25, 12))
    review(j8, j8a1, claimed=sec(j8a1.finished_at, 60), decided=sec(j8a1.finished_at, 360), decision="reject")

    # J9: completed on 28 March, never opened: too recent to count as abandoned.
    make_job(a, "completed", at(28), queued_for=90, calls=1, cost_usd=Decimal("0.15"), runtime_seconds=400,
             version=1, finished_at=at(28, 12))

    # Outside the cohort: before the window, and another workspace.
    make_job(a, "completed", at(27, month=2), queued_for=1, calls=3, cost_usd=Decimal("5"), runtime_seconds=9000, version=1)
    make_job(b, "completed", at(15), queued_for=1000, calls=5, cost_usd=Decimal("2"), runtime_seconds=7000, version=1,
             finished_at=at(15, 12))
    return a, b


def test_every_figure_matches_the_hand_computed_value(crafted, django_assert_num_queries):
    a, _ = crafted

    with django_assert_num_queries(10):
        result = metrics_compute(workspace_ids=[a.pk], since=SINCE, until=UNTIL)

    assert result["window"] == {"since": "2026-03-01T00:00:00+00:00", "until": "2026-03-31T00:00:00+00:00"}
    assert result["jobs"] == {
        "submitted": 9,
        "by_status": {
            "queued": 0, "preparing": 0, "running": 0, "needs_review": 1, "completed": 3,
            "failed": 3, "canceled": 1, "expired": 0, "rejected": 1,
        },
    }
    # 0.30 + 0.10 + 0.05 + 0.05 + 0.10 + 0.15 = 0.75 spent, 3 completed reports.
    assert result["cost_per_completed_report_usd"] == 0.25
    # Completed and needs_review: 100, 200, 300, 400 → p50 250, p95 300 + 0.85 × 100.
    assert result["runtime_seconds"] == {"p50": 250.0, "p95": 385.0}
    # 15, 30, 45, 60, 75, 90, 120 → p50 60, p95 at rank 5.7: 90 + 0.7 × 30.
    assert result["queued_seconds"] == {"p50": 60.0, "p95": 111.0}
    # Drafts: J1 (2 calls), J2 (2), J3 (1), J8 (1), J9 (1) → 7 / 5.
    assert result["model_calls_per_report"] == 1.4
    # J1 has 2 sources (1 failed), the other 8 jobs 1 each.
    assert result["sources"] == {"total": 10, "failed": 1, "per_job": 1.1111}
    # provider_error: J4 retried, J6 not; timeout: J4 not retried after it; policy_block: J5 not.
    assert result["retry_rate_by_failure_class"] == {"policy_block": 0.0, "provider_error": 0.5, "timeout": 0.0}
    assert result["review"] == {
        # First claims per draft: J1 600, J2 v1 300, J2 v2 100, J8 60 → p50 200, p95 300 + 0.85 × 300.
        "time_to_first_claim_seconds": {"p50": 200.0, "p95": 555.0},
        # Decisions: 1200, 900, 500, 360 → p50 700, p95 900 + 0.85 × 300.
        "time_to_decision_seconds": {"p50": 700.0, "p95": 1155.0},
        # approve, request_revision, approve, reject.
        "rejection_rate": 0.25,
        # One revision attempt (J2) over 5 drafted jobs.
        "revision_rounds_per_report": 0.2,
    }
    # J2: completed 5 March, never opened. J9 is within 7 days of the window's end.
    assert result["abandoned_jobs"] == 1
    # J1 of J1, J2, J9.
    assert result["export_rate"] == 0.3333
    days = result["states_over_time"]
    assert [d["date"] for d in days] == [f"2026-03-{n:02d}" for n in range(1, 31)]
    assert days[1] == {"date": "2026-03-02", **{s: 0 for s in result["jobs"]["by_status"]}, "completed": 1}
    assert days[12]["failed"] == 1 and days[24]["rejected"] == 1
    assert sum(v for d in days for k, v in d.items() if k != "date") == 9
    json.dumps(result)  # JSON-serialisable as it stands: no Decimals, no datetimes


def test_all_workspaces_and_no_workspaces():
    a = WorkspaceFactory(slug="a")
    b = WorkspaceFactory(slug="b")
    make_job(a, "completed", at(2), cost_usd=Decimal("1"), version=1, runtime_seconds=10)
    make_job(b, "completed", at(3), cost_usd=Decimal("3"), version=1, runtime_seconds=30)

    everyone = metrics_compute(workspace_ids=None, since=SINCE, until=UNTIL)
    nobody = metrics_compute(workspace_ids=[], since=SINCE, until=UNTIL)

    assert everyone["jobs"]["submitted"] == 2
    assert everyone["cost_per_completed_report_usd"] == 2.0
    assert everyone["runtime_seconds"] == {"p50": 20.0, "p95": 29.0}
    assert nobody["jobs"]["submitted"] == 0


def test_an_empty_window_has_no_ratios_rather_than_zeros():
    result = metrics_compute(workspace_ids=None, since=SINCE, until=SINCE + dt.timedelta(days=1))

    assert result["jobs"]["submitted"] == 0
    for key in ("cost_per_completed_report_usd", "model_calls_per_report", "export_rate"):
        assert result[key] is None
    assert result["runtime_seconds"] == {"p50": None, "p95": None}
    assert result["review"]["rejection_rate"] is None
    assert result["sources"] == {"total": 0, "failed": 0, "per_job": None}
    assert result["retry_rate_by_failure_class"] == {}
    assert result["states_over_time"] == [{"date": "2026-03-01", **{s: 0 for s in result["jobs"]["by_status"]}}]


def test_the_query_count_does_not_grow_with_the_data(django_assert_num_queries):
    workspace = WorkspaceFactory(slug="a")
    for day in range(1, 21):
        job = make_job(workspace, "completed", at(day), queued_for=day, calls=2, version=1, runtime_seconds=day)
        ReviewFactory(job=job, claimed_at=at(day, 11), decided_at=at(day, 12), decision="approve")
        event(job, "failed", at(day, 10, 30), failure_class="timeout")

    with django_assert_num_queries(10):
        result = metrics_compute(workspace_ids=[workspace.pk], since=SINCE, until=UNTIL)
    assert result["jobs"]["submitted"] == 20


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([7], 95, 7.0), ([1, 2, 3, 4], 50, 2.5), ([10, 20], 95, 19.5), ([5, 1, 3], 0, 1.0), ([5, 1, 3], 100, 5.0)],
)
def test_percentile_interpolates_between_closest_ranks(values, q, expected):
    assert percentile(values, q) == expected


def test_a_part_day_at_the_end_of_the_window_is_a_day_of_its_own():
    result = metrics_compute(workspace_ids=None, since=SINCE, until=SINCE + dt.timedelta(hours=36))
    assert [d["date"] for d in result["states_over_time"]] == ["2026-03-01", "2026-03-02"]
