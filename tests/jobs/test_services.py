"""The job lifecycle service layer: every (status, action) pair, events, roles, races."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from jobs import events, services
from jobs.models import (
    AttemptReason,
    JobAttempt,
    JobEvent,
    JobStatus,
    ReportJob,
    ReviewState,
)
from reportdesk.errors import InvalidTransition, NotRetryable, PermissionDenied, ValidationFailed
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportJobFactory, ReportTemplateFactory, WorkspaceFactory, member
from tests.oncommit import work_callbacks

pytestmark = pytest.mark.django_db

# DESIGN.md's transitions, written out independently of jobs.policy so that a change to
# the policy table that breaks the design fails here. True: allowed; False: refused (409).
ALL_STATUSES = [s.value for s in JobStatus]
ALLOWED = {
    "cancel": {"queued", "preparing", "running"},
    "expire": {"queued", "preparing", "running", "needs_review"},
    "retry": {"failed"},
    "revise": {"failed", "rejected"},
    "approve": {"needs_review"},
    "reject": {"needs_review"},
    "request_revision": {"needs_review"},
    "archive": {"completed", "failed", "canceled", "expired", "rejected"},
    "rerun": {"failed", "canceled", "expired", "rejected"},
    "edit": {"queued", "preparing"},
}
# Target status after a successful action (None: status unchanged).
TARGET = {
    "cancel": "canceled",
    "expire": "expired",
    "retry": "queued",
    "revise": "queued",
    "approve": "completed",
    "reject": "rejected",
    "request_revision": "queued",
    "archive": None,
    "rerun": None,
    "edit": None,
}


def _job_in(status, *, failure_class="provider_error", **kwargs):
    job = ReportJobFactory(**kwargs)
    fields = {"status": status}
    if status == "failed":
        fields["failure_class"] = failure_class
        fields["failure_retryable"] = failure_class in ("timeout", "provider_error", "source_error")
    if status in ("completed", "failed", "canceled", "expired", "rejected"):
        fields["finished_at"] = timezone.now()
    ReportJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def _act(action, job, actor):
    if action == "cancel":
        return services.job_cancel(job=job, actor=actor, reason="test")
    if action == "expire":
        return services.job_expire(job=job, actor=actor, reason="test")
    if action == "retry":
        return services.job_retry(job=job, actor=actor)
    if action == "revise":
        return services.job_revise(job=job, actor=actor, instructions="Cite the capacity figure.")
    if action == "approve":
        return services.job_approve(job=job, actor=actor)
    if action == "reject":
        return services.job_reject(job=job, actor=actor, reason="Unsupported claims.")
    if action == "request_revision":
        return services.job_request_revision(job=job, actor=actor, comment="Add a risks section.")
    if action == "archive":
        return services.job_archive(job=job, actor=actor)
    if action == "rerun":
        return services.job_rerun(job=job, actor=actor)
    if action == "edit":
        return services.job_edit(job=job, actor=actor, topic="A sharper topic")
    raise AssertionError(action)


@pytest.mark.parametrize("status", ALL_STATUSES)
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_every_status_action_pair(status, action):
    # given a job in `status` and an operator (who holds every role-gated action)
    job = _job_in(status)
    operator = member(job.workspace, Role.OPERATOR)
    events_before = JobEvent.objects.filter(job=job).count()

    if action in ("cancel", "expire") and status == TARGET[action]:
        # canceling a canceled job (or expiring an expired one) is a no-op, not an error
        assert _act(action, job, operator).status == status
        assert JobEvent.objects.filter(job=job).count() == events_before
        return
    if status not in ALLOWED[action]:
        # then the action is refused with the current state named, and nothing is written
        with pytest.raises(InvalidTransition) as exc:
            _act(action, job, operator)
        assert status in exc.value.message
        assert "Allowed now" in exc.value.message
        assert JobEvent.objects.filter(job=job).count() == events_before
        job.refresh_from_db()
        assert job.status == status
        return

    result = _act(action, job, operator)
    job.refresh_from_db()
    events = list(JobEvent.objects.filter(job=job).order_by("id"))[events_before:]
    # exactly one event on this job, by the operator, saying what changed
    assert len(events) == 1
    event = events[0]
    assert event.actor_kind == "user" and event.actor == operator and event.actor_name == operator.username
    assert event.from_status == status
    expected = TARGET[action] or status
    assert job.status == expected
    assert event.to_status == expected
    if action == "rerun":
        assert result.pk != job.pk and result.rerun_of == job and result.status == "queued"
    if action == "archive":
        assert job.archived_at is not None


def test_archived_job_offers_only_unarchive():
    job = _job_in("canceled")
    operator = member(job.workspace, Role.OPERATOR)
    services.job_archive(job=job, actor=operator)
    with pytest.raises(InvalidTransition):
        services.job_rerun(job=job, actor=operator)
    job = services.job_unarchive(job=job, actor=operator, reason="Needed for the audit")
    assert job.archived_at is None
    assert list(job.events.values_list("action", flat=True)) == ["archived", "unarchived"]


def test_submit_creates_job_manifest_attempt_event_and_enqueues_on_commit(django_capture_on_commit_callbacks):
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory(review_required=True)
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.job_submit(
            workspace=workspace, requested_by=requester, template=template,
            topic="  Battery recycling  ", audience="Board",
            sources=[SourceSpec(title="Notes", text="Recycling capacity grew 40% in 2025.")],
        )
    assert len(work_callbacks(callbacks)) == 1  # the worker is told only once the job is committed
    assert job.status == "queued" and job.topic == "Battery recycling"
    assert job.review_state == ReviewState.PENDING
    assert job.current_attempt.number == 1 and job.current_attempt.reason == AttemptReason.INITIAL
    assert job.source_manifest.entries.count() == 1
    assert job.deadline > timezone.now()
    assert len(job.public_id) == 10 and not job.public_id.isdigit()
    [event] = job.events.all()
    assert (event.action, event.actor, event.to_status) == ("submitted", requester, "queued")
    assert "Battery recycling" in job.input_summary


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"topic": "   "}, "topic"),
        ({"topic": "x" * 501}, "topic"),
        ({"sources": []}, "sources"),
        ({"deadline": timezone.now() - dt.timedelta(hours=1)}, "deadline"),
        ({"sources": [SourceSpec(url="ftp://example.com/x")]}, "sources"),
        ({"sources": [SourceSpec(item_id=999999)]}, "sources"),
    ],
)
def test_submit_refuses_bad_input_clearly(kwargs, field):
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    args = {"topic": "Topic", "sources": [SourceSpec(text="Some text.")], **kwargs}
    with pytest.raises(ValidationFailed) as exc:
        services.job_submit(workspace=workspace, requested_by=requester, template=ReportTemplateFactory(), **args)
    assert field in exc.value.fields
    assert ReportJob.objects.count() == 0


def test_submit_needs_a_submitting_role_in_the_workspace():
    workspace = WorkspaceFactory()
    reviewer = member(workspace, Role.REVIEWER)
    outsider = member(WorkspaceFactory(), Role.OPERATOR)
    for user in (reviewer, outsider):
        with pytest.raises(PermissionDenied):
            services.job_submit(
                workspace=workspace, requested_by=user, template=ReportTemplateFactory(),
                topic="T", sources=[SourceSpec(text="x")],
            )


def test_cancel_twice_leaves_one_canceled_job_and_one_event():
    job = _job_in("running")
    operator = member(job.workspace, Role.OPERATOR)
    first = services.job_cancel(job=job, actor=operator, reason="Wrong topic")
    second = services.job_cancel(job=job, actor=operator, reason="Clicked again")
    assert first.status == second.status == "canceled"
    assert list(job.events.values_list("action", "reason")) == [("canceled", "Wrong topic")]


def test_a_late_provider_result_never_reopens_a_canceled_or_expired_job():
    for status in ("canceled", "expired"):
        job = _job_in("running")
        operator = member(job.workspace, Role.OPERATOR)
        attempt = job.current_attempt
        if status == "canceled":
            services.job_cancel(job=job, actor=operator)
        else:
            services.job_expire(job=job, actor=operator, reason="Window passed")
        assert services.job_finish(job=job, attempt=attempt, artifacts={"report_md": "# Draft"}) is None
        assert services.job_fail(job=job, failure_class="timeout", message="late") is None
        job.refresh_from_db()
        assert job.status == status and job.version == 0
        assert job.events.count() == 1


@pytest.mark.parametrize("failure_class", ["policy_block", "validation_error"])
def test_retry_refuses_non_retryable_failures_and_says_what_to_do(failure_class):
    job = _job_in("failed", failure_class=failure_class)
    operator = member(job.workspace, Role.OPERATOR)
    with pytest.raises(NotRetryable) as exc:
        services.job_retry(job=job, actor=operator)
    assert failure_class in exc.value.message and "Revise" in exc.value.message
    assert job.events.count() == 0


@pytest.mark.parametrize("failure_class", ["timeout", "provider_error", "source_error"])
def test_retry_of_retryable_failure_starts_a_new_attempt(failure_class, django_capture_on_commit_callbacks):
    job = _job_in("failed", failure_class=failure_class)
    requester = job.requested_by
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.job_retry(job=job, actor=requester, reason="Provider outage is over")
    assert len(work_callbacks(callbacks)) == 1
    assert job.status == "queued" and job.failure_class == "" and job.retries == 1
    assert job.current_attempt.number == 2 and job.current_attempt.reason == "retry"
    assert JobAttempt.objects.filter(job=job).count() == 2


def test_worker_transitions_record_the_system_as_actor():
    job = _job_in("queued")
    job = services.job_mark_preparing(job=job)
    job = services.job_fail(job=job, failure_class="source_error", message="No source could be read.")
    events = list(job.events.all())
    assert [(e.action, e.actor_kind, e.actor_id) for e in events] == [
        ("preparing", "worker", None),
        ("failed", "worker", None),
    ]
    assert events[1].details["failure_class"] == "source_error"
    assert job.failure_message == "No source could be read."


def test_finish_goes_to_needs_review_or_completed_by_template_policy():
    for review_required, expected in ((True, "needs_review"), (False, "completed")):
        job = _job_in("running", template=ReportTemplateFactory(review_required=review_required))
        job = services.job_finish(job=job, attempt=job.current_attempt, artifacts={"report_md": "# Draft"})
        assert job.status == expected
        assert job.review_state == ("pending" if review_required else "not_required")
        assert job.version == 1
        job.current_attempt.refresh_from_db()
        assert job.current_attempt.status == "succeeded" and job.current_attempt.version == 1


def test_request_revision_makes_a_new_attempt_carrying_the_comment():
    job = _job_in("needs_review")
    reviewer = member(job.workspace, Role.REVIEWER)
    job = services.job_request_revision(job=job, actor=reviewer, comment="Add the 2025 capacity figure.")
    assert job.status == "queued" and job.review_state == "revision_requested"
    assert job.current_attempt.reason == "revision"
    assert job.current_attempt.instructions == "Add the 2025 capacity figure."


class TestRoles:
    def test_reviewer_cannot_cancel(self):
        job = _job_in("running")
        reviewer = member(job.workspace, Role.REVIEWER)
        with pytest.raises(PermissionDenied) as exc:
            services.job_cancel(job=job, actor=reviewer)
        assert "reviewer" in exc.value.message and "cancel" in exc.value.message

    def test_requester_acts_only_on_their_own_jobs(self):
        job = _job_in("running")
        other = member(job.workspace, Role.REQUESTER)
        with pytest.raises(PermissionDenied) as exc:
            services.job_cancel(job=job, actor=other)
        assert "own" in exc.value.message
        assert services.job_cancel(job=job, actor=job.requested_by).status == "canceled"

    def test_nobody_reviews_their_own_report(self):
        workspace = WorkspaceFactory()
        operator = member(workspace, Role.OPERATOR)
        job = _job_in("needs_review", workspace=workspace, requested_by=operator)
        with pytest.raises(PermissionDenied) as exc:
            services.job_approve(job=job, actor=operator)
        assert "someone else" in exc.value.message

    def test_requester_cannot_expire(self):
        job = _job_in("queued")
        with pytest.raises(PermissionDenied):
            services.job_expire(job=job, actor=job.requested_by)

    def test_member_of_another_workspace_is_refused(self):
        job = _job_in("running")
        outsider = member(WorkspaceFactory(), Role.OPERATOR)
        with pytest.raises(PermissionDenied) as exc:
            services.job_cancel(job=job, actor=outsider)
        assert "not a member" in exc.value.message


def test_edit_is_locked_once_the_provider_call_begins():
    job = _job_in("preparing")
    ReportJob.objects.filter(pk=job.pk).update(request_locked_at=timezone.now())
    job.refresh_from_db()
    with pytest.raises(InvalidTransition) as exc:
        services.job_edit(job=job, actor=job.requested_by, topic="New")
    assert "locked" in exc.value.message


def test_events_are_append_only():
    job = _job_in("queued")
    event = events.event_record(job=job, actor=events.WORKER, action="preparing", from_status="queued")
    event.reason = "rewritten"
    with pytest.raises(Exception):
        event.save()
    with pytest.raises(Exception):
        event.delete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_finish_always_ends_consistent():
    """Cancel and finish from two threads at once, many times: one wins, the other is refused
    or a no-op, and the events tell the same story as the job."""
    for _ in range(25):
        job = _job_in("running")
        operator = member(job.workspace, Role.OPERATOR)
        attempt = job.current_attempt
        barrier = threading.Barrier(2)
        errors = []

        def cancel():
            try:
                barrier.wait()
                services.job_cancel(job=job, actor=operator, reason="race")
            except InvalidTransition:
                pass
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        def finish():
            try:
                barrier.wait()
                services.job_finish(job=job, attempt=attempt, artifacts={"report_md": "# Draft"})
            except Exception as exc:  # pragma: no cover
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=cancel), threading.Thread(target=finish)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        job.refresh_from_db()
        actions = list(job.events.values_list("action", flat=True))
        assert job.status in ("canceled", "needs_review")
        if job.status == "canceled":
            assert actions == ["canceled"] and job.version == 0
        else:
            assert actions == ["draft_ready"] and job.version == 1
