"""jobs.policy, the one answer to "what may this person do with this job now": DESIGN.md's
table of states and actions crossed with the roles, written out here independently of the
module, so a change to either side that breaks the design fails in one place."""

import pytest

from jobs import policy
from jobs.models import ReportJob
from reportdesk.models import Role
from tests.factories import ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

# DESIGN.md, "Job states": the actions each status offers.
STATE_ACTIONS = {
    "queued": {"cancel", "edit", "expire"},
    "preparing": {"cancel", "edit", "expire"},
    "running": {"cancel", "view_sources", "expire"},
    "needs_review": {"approve", "reject", "request_revision", "view_sources", "expire"},
    "completed": {"open", "export", "archive"},
    "failed": {"retry", "revise", "rerun", "archive"},
    "canceled": {"rerun", "archive"},
    "expired": {"rerun", "archive"},
    "rejected": {"revise", "rerun", "archive"},
}
# Who holds which action; requesters on their own jobs, nobody reviews their own report.
ROLE_GRANTS = {
    Role.REQUESTER: {"cancel", "edit", "view_sources", "open", "export", "archive", "unarchive", "retry", "revise", "rerun"},
    Role.REVIEWER: {"view_sources", "open", "export", "approve", "reject", "request_revision"},
    Role.OPERATOR: {
        "cancel", "edit", "view_sources", "open", "export", "archive", "unarchive", "retry", "revise", "rerun",
        "expire", "approve", "reject", "request_revision",
    },
}
OWN_ONLY = {"cancel", "edit", "archive", "unarchive", "retry", "revise", "rerun"}
REVIEW = {"approve", "reject", "request_revision"}


def _job(status: str) -> ReportJob:
    job = ReportJobFactory()
    fields = {"status": status}
    if status == "failed":
        fields.update(failure_class="provider_error", failure_retryable=True)
    ReportJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("status", list(STATE_ACTIONS))
@pytest.mark.parametrize("role", [Role.REQUESTER, Role.REVIEWER, Role.OPERATOR])
@pytest.mark.parametrize("own", [True, False], ids=["own job", "someone else's job"])
def test_state_by_role(status, role, own):
    job = _job(status)
    if own:
        person = job.requested_by
        job.workspace.memberships.filter(user=person).update(role=role)
        person.__dict__.pop("_reportdesk_roles", None)  # re-read the membership changed above
    else:
        person = member(job.workspace, role)
    expected = STATE_ACTIONS[status] & ROLE_GRANTS[role]
    if role == Role.REQUESTER and not own:
        expected -= OWN_ONLY
    if own:
        expected -= REVIEW
    assert set(policy.allowed_actions(job, person)) == expected
    assert set(policy.state_actions(job)) == STATE_ACTIONS[status]


def test_a_member_of_another_workspace_may_do_nothing():
    job = _job("needs_review")
    outsider = member(WorkspaceFactory(), Role.OPERATOR)
    assert policy.allowed_actions(job, outsider) == ()
    assert not policy.may_submit(outsider, job.workspace_id)
    assert not policy.may_review_in(outsider, job.workspace_id)


@pytest.mark.parametrize(
    "role, submits, reviews",
    [(Role.REQUESTER, True, False), (Role.REVIEWER, False, True), (Role.OPERATOR, True, True)],
)
def test_who_submits_and_who_reviews(role, submits, reviews):
    workspace = WorkspaceFactory()
    person = member(workspace, role)
    assert policy.may_submit(person, workspace.pk) is submits
    assert policy.may_review_in(person, workspace.pk) is reviews
    assert (policy.reviewable_workspace_ids(person) == [workspace.pk]) is reviews


@pytest.mark.parametrize(("seconds", "shown"), [(12, "12 s"), (200, "3\xa0minutes")])
def test_a_running_job_says_when_it_was_last_checked(seconds, shown):
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    job = _job("running")
    job.last_checked_at = now - dt.timedelta(seconds=seconds)

    message = policy.job_state(job, member(job.workspace, Role.REQUESTER), now=now).message

    assert message.endswith(f"Last checked {shown} ago.")
