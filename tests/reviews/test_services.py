"""Claims and decisions: reviews.services over real drafts."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from jobs import services as job_services
from jobs.worker.step import job_advance
from jobs.models import JobAttempt, JobEvent, ProviderCall, ReportJob
from reportdesk.errors import ClaimConflict, InvalidTransition, PermissionDenied, ValidationFailed
from reportdesk.models import Role
from reviews import services
from reviews.models import CHECKLIST, Review, ReviewComment
from sources.services import SourceSpec
from tests.factories import ReportJobFactory, WorkspaceFactory, member
from tests.reviews.conftest import PRICES, RECYCLING, report_with

pytestmark = pytest.mark.django_db

ALL_CONFIRMED = dict.fromkeys(CHECKLIST, True)
FABRICATED = report_with(evidence=[{"claim": "Capacity grew.", "source_id": "S1", "quote": "Capacity tripled in France"}])


def actions(job):
    return list(JobEvent.objects.filter(job=job).order_by("at", "id").values_list("action", flat=True))


# --- Claims -------------------------------------------------------------------------------


def test_a_claim_holds_the_draft_for_the_claim_window(make_draft, reviewer, settings):
    settings.REVIEW_CLAIM_MINUTES = 20
    job = make_draft()

    review = services.review_claim(job=job, reviewer=reviewer)

    assert review.attempt_id == job.current_attempt_id
    assert dt.timedelta(minutes=19) < review.claim_expires_at - timezone.now() <= dt.timedelta(minutes=20)
    event = job.events.get(action="claimed")
    assert (event.actor_name, event.details["version"]) == ("rita", 1)


def test_claiming_again_renews_your_own_claim(make_draft, reviewer):
    job = make_draft()
    first = services.review_claim(job=job, reviewer=reviewer)
    Review.objects.filter(pk=first.pk).update(claim_expires_at=timezone.now() + dt.timedelta(minutes=1))

    again = services.review_claim(job=job, reviewer=reviewer)

    assert again.pk == first.pk
    assert again.claim_expires_at - timezone.now() > dt.timedelta(minutes=25)
    assert actions(job).count("claimed") == 1


def test_a_second_reviewer_cannot_claim_a_held_draft(make_draft, reviewer, workspace):
    job = make_draft()
    services.review_claim(job=job, reviewer=reviewer)
    other = member(workspace, Role.REVIEWER, username="omar")

    with pytest.raises(ClaimConflict) as exc:
        services.review_claim(job=job, reviewer=other)

    assert exc.value.message.startswith("rita is reviewing this draft; their claim expires at ")
    assert Review.objects.filter(job=job).count() == 1


def test_an_expired_claim_is_taken_over(make_draft, reviewer, workspace):
    job = make_draft()
    stale = services.review_claim(job=job, reviewer=reviewer)
    Review.objects.filter(pk=stale.pk).update(claim_expires_at=timezone.now() - dt.timedelta(seconds=1))
    other = member(workspace, Role.REVIEWER, username="omar")

    review = services.review_claim(job=job, reviewer=other)

    stale.refresh_from_db()
    assert stale.released_at is not None and stale.decided_at is None
    assert review.reviewer == other
    assert job.events.filter(action="claimed").last().details["took_over_expired_claim_of"] == ["rita"]


def test_a_requester_never_reviews_their_own_report(make_draft, workspace):
    operator = member(workspace, Role.OPERATOR, username="olga")
    job = make_draft(requested_by=operator)

    with pytest.raises(PermissionDenied) as exc:
        services.review_claim(job=job, reviewer=operator)
    with pytest.raises(PermissionDenied):
        services.review_decide(job=job, reviewer=operator, decision="approve", checklist=ALL_CONFIRMED)

    assert exc.value.message == "You requested this report, so someone else must review it."
    assert not Review.objects.filter(job=job).exists()


@pytest.mark.parametrize("role", [Role.REQUESTER, None])
def test_only_reviewers_and_operators_of_the_workspace_claim(make_draft, role):
    job = make_draft()
    person = member(job.workspace, role) if role else member(WorkspaceFactory(), Role.REVIEWER)

    with pytest.raises(PermissionDenied):
        services.review_claim(job=job, reviewer=person)


def test_only_drafts_that_need_review_can_be_claimed(make_draft, reviewer):
    job = make_draft()
    ReportJob.objects.filter(pk=job.pk).update(status="completed", review_state="approved")

    with pytest.raises(InvalidTransition):
        services.review_claim(job=job, reviewer=reviewer)


def test_the_holder_releases_their_claim(make_draft, reviewer):
    job = make_draft()
    review = services.review_claim(job=job, reviewer=reviewer)

    services.review_release(job=job, reviewer=reviewer)
    services.review_release(job=job, reviewer=reviewer)  # nothing held: nothing happens

    review.refresh_from_db()
    assert review.released_at is not None
    assert actions(job).count("released") == 1


def test_only_the_holder_or_an_operator_releases_a_claim(make_draft, reviewer, workspace):
    job = make_draft()
    services.review_claim(job=job, reviewer=reviewer)
    colleague = member(workspace, Role.REVIEWER, username="omar")
    operator = member(workspace, Role.OPERATOR, username="olga")

    with pytest.raises(PermissionDenied):
        services.review_release(job=job, reviewer=colleague)
    services.review_release(job=job, reviewer=operator, reason="Rita is off sick.")

    event = job.events.get(action="released")
    assert (event.actor_name, event.reason, event.details["claim_of"]) == ("olga", "Rita is off sick.", "rita")
    services.review_claim(job=job, reviewer=colleague)


def test_a_claim_that_expired_holds_nothing_and_anyone_may_release_it(make_draft, reviewer, workspace):
    from reviews.selectors import holder_of

    job = make_draft()
    claim = services.review_claim(job=job, reviewer=reviewer)
    Review.objects.filter(pk=claim.pk).update(claim_expires_at=timezone.now() - dt.timedelta(minutes=1))
    colleague = member(workspace, Role.REVIEWER, username="omar")
    assert holder_of(job=job) is None

    services.review_release(job=job, reviewer=colleague)  # nothing to refuse: nobody holds it

    assert Review.objects.get(pk=claim.pk).released_at is not None
    assert not job.events.filter(action="released").exists()


def test_a_claim_lapses_with_its_draft_when_the_job_expires(make_draft, reviewer, workspace, client):
    from reviews.selectors import holder_of

    job = make_draft()
    services.review_claim(job=job, reviewer=reviewer)
    operator = member(workspace, Role.OPERATOR, username="olga")

    job_services.job_expire(job=job, actor=operator, reason="The review window passed.")

    assert holder_of(job=job) is None
    client.force_login(operator)
    assert "holds this draft" not in client.get(f"/admin/reviews/review/draft/{job.public_id}/").content.decode()
    services.review_release(job=job, reviewer=operator)
    assert not Review.objects.filter(job=job, released_at__isnull=True, decided_at__isnull=True).exists()


# --- Decisions ------------------------------------------------------------------------------


def test_approving_a_clean_draft_completes_it_and_records_what_was_checked(make_draft, reviewer):
    job = make_draft()

    job = services.review_decide(job=job, reviewer=reviewer, decision="approve", comment="Solid.", checklist=ALL_CONFIRMED)

    assert (job.status, job.review_state) == ("completed", "approved")
    review = Review.objects.get(job=job)
    assert (review.decision, review.comment, review.override_reason) == ("approve", "Solid.", "")
    assert review.checklist == ALL_CONFIRMED
    assert review.checks["counts"]["failed"] == 0 and review.checks["version"] == 1
    assert {r["check"] for r in review.checks["results"]} >= {"source_exists", "quote_found", "section_present"}
    event = job.events.get(action="approved")
    assert (event.actor_name, event.from_status, event.to_status, event.reason) == ("rita", "needs_review", "completed", "Solid.")
    assert event.details["checks"] == {"passed": review.checks["counts"]["passed"], "warning": 0, "failed": 0, "failed_checks": []}
    assert event.details["checklist"] == ALL_CONFIRMED


def test_approving_a_draft_with_failed_checks_needs_an_override_reason(make_draft, reviewer):
    job = make_draft(FABRICATED)

    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="approve", checklist=ALL_CONFIRMED)

    assert set(exc.value.fields) == {"override_reason"}
    assert "1 automatic check failed" in exc.value.message
    job.refresh_from_db()
    assert job.status == "needs_review"
    assert not Review.objects.filter(job=job).exists()  # the claim it took is rolled back too


def test_an_override_reason_approves_and_is_kept_with_the_failed_checks(make_draft, reviewer):
    job = make_draft(FABRICATED)

    job = services.review_decide(
        job=job, reviewer=reviewer, decision="approve", checklist=ALL_CONFIRMED,
        override_reason="The row paraphrases S1 faithfully; the figure is in the Findings quote.",
    )

    assert job.status == "completed"
    review = Review.objects.get(job=job)
    assert review.override_reason.startswith("The row paraphrases")
    assert review.checks["failed_checks"] == ["quote_found"]
    event = job.events.get(action="approved")
    assert event.reason == review.override_reason
    assert event.details["override_reason"] == review.override_reason
    assert event.details["checks"]["failed_checks"] == ["quote_found"]


def test_a_draft_without_a_stored_report_counts_as_failing(reviewer, workspace, template):
    job = ReportJobFactory(workspace=workspace, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="needs_review", version=1)
    JobAttempt.objects.filter(pk=job.current_attempt_id).update(version=1)

    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="approve", checklist=ALL_CONFIRMED)

    assert "override_reason" in exc.value.fields


@pytest.mark.parametrize(
    ("checklist", "field_message"),
    [
        (None, "6 of 6 not confirmed"),
        ({**ALL_CONFIRMED, "safe_for_audience": False}, "1 of 6 not confirmed: safe_for_audience"),
        (["sources_support_claims"], "5 of 6 not confirmed"),
    ],
)
def test_approving_needs_every_checklist_item_confirmed(make_draft, reviewer, checklist, field_message):
    job = make_draft()

    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="approve", checklist=checklist)

    assert field_message in exc.value.fields["checklist"]


@pytest.mark.parametrize("checklist", [{"looks_fine": True}, {"safe_for_audience": "yes"}, "all"])
def test_a_malformed_checklist_is_refused(make_draft, reviewer, checklist):
    job = make_draft()

    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="reject", comment="No.", checklist=checklist)

    assert "checklist" in exc.value.fields


def test_rejecting_needs_a_reason_and_ends_the_job(make_draft, reviewer):
    job = make_draft()
    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="reject", comment="  ")
    assert exc.value.fields == {"comment": "Required to reject."}

    job = services.review_decide(job=job, reviewer=reviewer, decision="reject", comment="Relies on a vendor brochure.")

    assert (job.status, job.review_state) == ("rejected", "rejected")
    assert job.events.get(action="rejected").reason == "Relies on a vendor brochure."
    assert ReviewComment.objects.get(review__job=job).body == "Relies on a vendor brochure."


def test_an_unknown_decision_is_refused(make_draft, reviewer):
    with pytest.raises(ValidationFailed) as exc:
        services.review_decide(job=make_draft(), reviewer=reviewer, decision="maybe")
    assert "decision" in exc.value.fields


def test_a_revision_carries_the_comments_and_the_failed_checks_to_the_next_attempt(make_draft, reviewer):
    job = make_draft(FABRICATED)

    with pytest.raises(ValidationFailed):
        services.review_decide(job=job, reviewer=reviewer, decision="request_revision")
    job = services.review_decide(
        job=job, reviewer=reviewer, decision="request_revision", comment="Quote S1 exactly.",
        section_comments={"Findings": "Add the 2025 price drop.", "Overview": "  "},
    )

    assert (job.status, job.review_state, job.version) == ("queued", "revision_requested", 1)
    attempt = job.current_attempt
    assert (attempt.number, attempt.reason) == (2, "revision")
    assert attempt.instructions.startswith("Quote S1 exactly.\n\nOn the section “Findings”: Add the 2025 price drop.\n\n")
    assert "Automatic checks that failed on version 1:\n- Evidence row 1: Not found in S1." in attempt.instructions
    assert "(“Capacity tripled in France”)" in attempt.instructions
    assert job.events.get(action="revision_requested").reason == "Quote S1 exactly."  # the reviewer's words; the model gets the rest
    comments = ReviewComment.objects.filter(review__job=job).order_by("id")
    assert [(c.section, c.body) for c in comments] == [("", "Quote S1 exactly."), ("Findings", "Add the 2025 price drop.")]


def test_a_decision_on_a_version_that_has_changed_is_refused(make_draft, reviewer):
    job = make_draft()

    with pytest.raises(InvalidTransition) as exc:
        services.review_decide(job=job, reviewer=reviewer, decision="reject", comment="No.", version=2)

    assert "now version 1; you read version 2" in exc.value.message


def test_nobody_decides_on_a_draft_someone_else_holds(make_draft, reviewer, workspace):
    job = make_draft()
    services.review_claim(job=job, reviewer=reviewer)

    with pytest.raises(ClaimConflict):
        services.review_decide(job=job, reviewer=member(workspace, Role.REVIEWER), decision="reject", comment="No.")


def test_a_revision_is_recorded_like_the_other_decisions_with_the_version_sent_back(make_draft, reviewer):
    from notifications.events import payload
    from tests.reviews.conftest import CLEAN_REPORT, store_draft

    job = make_draft()
    services.review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Add 2026 figures.", version=1)

    event = JobEvent.objects.get(job=job, action="revision_requested")
    assert event.details["version"] == 1 and event.details["attempt"] == 2 and event.details["reason"] == "revision"
    assert {"review", "checks", "checklist"} <= set(event.details)
    # its webhook, sent after the revised draft came back, still names the version sent back
    store_draft(job, CLEAN_REPORT)
    assert payload(event=event, event_type="job.status_changed")["data"]["version"] == 1


def test_a_revision_comes_back_from_the_local_provider_as_the_next_version(workspace, template, reviewer):
    requester = member(workspace, Role.REQUESTER, username="remy")
    job = job_services.job_submit(
        workspace=workspace, requested_by=requester, template=template, topic="Battery recycling capacity",
        sources=[SourceSpec(title="Capacity", text=RECYCLING), SourceSpec(title="Prices", text=PRICES)],
    )
    drive_to_review(job)

    services.review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Say more about black mass prices.")
    job = drive_to_review(job)

    assert (job.version, job.review_state) == (2, "pending")
    first, second = ProviderCall.objects.filter(job=job).order_by("id")
    assert second.previous_response_id == first.provider_response_id
    report = json.loads(job.artifacts.get(attempt=job.current_attempt, kind="report_json").content)
    assert report["sections"][-1]["heading"] == "Revision notes addressed"
    assert "Say more about black mass prices." in report["sections"][-1]["body"]
    assert actions(job) == [
        "submitted", "preparing", "started", "draft_ready", "claimed", "revision_requested",
        "preparing", "started", "draft_ready",
    ]


def drive_to_review(job, steps=10):
    for _ in range(steps):
        job_advance(job_id=job.pk)
        job.refresh_from_db()
        if job.status == "needs_review":
            return job
    raise AssertionError(f"job stuck in {job.status}")


# --- Races (PostgreSQL) ---------------------------------------------------------------------


def _race(*targets):
    barrier = threading.Barrier(len(targets))
    outcomes, errors = [], []

    def run(target):
        try:
            barrier.wait()
            outcomes.append(target())
        except (ClaimConflict, InvalidTransition) as exc:
            outcomes.append(type(exc).__name__)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_never_hold_one_draft(make_draft, workspace):
    """Reviewers claim the same draft from threads at once, many times: one claim wins, the
    rest are refused, and the database holds one open claim."""
    reviewers = [member(workspace, Role.REVIEWER, username=f"reviewer{i}") for i in range(4)]
    for _ in range(10):
        job = make_draft()

        outcomes = _race(*[lambda r=r: services.review_claim(job=job, reviewer=r) for r in reviewers])

        winners = [o for o in outcomes if isinstance(o, Review)]
        assert len(winners) == 1 and outcomes.count("ClaimConflict") == 3
        assert list(Review.objects.filter(job=job, released_at__isnull=True).values_list("reviewer", flat=True)) == [winners[0].reviewer_id]
        assert actions(job).count("claimed") == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_deciding_at_once_make_one_decision(make_draft, workspace):
    first, second = member(workspace, Role.REVIEWER, username="ann"), member(workspace, Role.REVIEWER, username="ben")
    for _ in range(10):
        job = make_draft()

        outcomes = _race(
            lambda: services.review_decide(job=job, reviewer=first, decision="approve", checklist=ALL_CONFIRMED),
            lambda: services.review_decide(job=job, reviewer=second, decision="reject", comment="No."),
        )

        job.refresh_from_db()
        assert sum(isinstance(o, ReportJob) for o in outcomes) == 1
        assert job.status in ("completed", "rejected")
        assert Review.objects.filter(job=job, decided_at__isnull=False).count() == 1
        assert [a for a in actions(job) if a in ("approved", "rejected")] == [{"completed": "approved", "rejected": "rejected"}[job.status]]
