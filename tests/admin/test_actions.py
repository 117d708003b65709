"""Cancel, retry, expire, archive and unarchive from the console: one job or many, confirmed
first, offered by role, decided per job by jobs.services, and reported job by job."""

import pytest

import jobs.admin
from jobs.models import AttemptReason, JobAttempt, JobEvent, JobStatus, ReportJob
from tests.admin.builders import job_in

pytestmark = pytest.mark.django_db

URL = "/admin/jobs/reportjob/"


def choose(client, action, jobs, **extra):
    """Pick the action in the list (the first step: the confirmation page)."""
    data = {"action": action, "_selected_action": [j.pk for j in jobs], "index": 0, "select_across": 0, **extra}
    return client.post(URL, data)


def confirm(client, action, jobs, reason="", query="", **extra):
    """Confirm it, as the confirmation page's form does."""
    data = {"action": action, "_selected_action": [j.pk for j in jobs], "select_across": 0, "post": "yes", "reason": reason, **extra}
    return client.post(URL + query, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def status(job) -> str:
    return ReportJob.objects.get(pk=job.pk).status


@pytest.mark.parametrize(
    ("who", "offered"),
    [
        ("operator", ["cancel_jobs", "retry_jobs", "expire_jobs", "archive_jobs", "unarchive_jobs"]),
        ("requester", ["cancel_jobs", "retry_jobs", "archive_jobs", "unarchive_jobs"]),
        ("reviewer", []),
    ],
)
def test_actions_are_offered_by_role(who, offered, request, as_user):
    form = as_user(request.getfixturevalue(who)).get(URL).context["action_form"]

    assert ([value for value, _ in form.fields["action"].choices if value] if form else []) == offered


def test_the_confirmation_says_what_will_change_and_what_will_be_skipped_and_why(as_user, operator, workspace):
    running = job_in("running", workspace=workspace)
    completed = job_in("completed", workspace=workspace)

    response = choose(as_user(operator), "cancel_jobs", [running, completed])
    html = response.content.decode()

    assert "1 job will be canceled" in html and running.public_id in html
    assert "1 job will be skipped" in html and completed.public_id in html
    assert "Cannot cancel a job that is completed. Allowed now: open, export, archive." in html
    assert 'name="reason"' in html and "required" in html
    assert (status(running), status(completed)) == ("running", "completed")
    assert not JobEvent.objects.filter(action="canceled").exists()


def test_cancel_needs_a_reason(as_user, operator, workspace):
    running = job_in("running", workspace=workspace)

    response = confirm(as_user(operator), "cancel_jobs", [running], reason="  ")

    assert "Say why: the reason is kept in each job&#x27;s history." in response.content.decode()
    assert status(running) == "running"


def test_bulk_cancel_cancels_each_job_and_keeps_the_reason_in_its_history(as_user, operator, workspace):
    jobs = [job_in("running", workspace=workspace), job_in("queued", workspace=workspace)]

    response = confirm(as_user(operator), "cancel_jobs", jobs, reason="Wrong template for this client.")

    assert [status(j) for j in jobs] == ["canceled", "canceled"]
    for job in jobs:
        event = JobEvent.objects.get(job=job, action="canceled")
        assert (event.actor_name, event.reason) == ("olga", "Wrong template for this client.")
    [message] = messages_of(response)
    assert message.startswith("Canceled 2 jobs: ") and all(j.public_id in message for j in jobs)


def test_bulk_retry_skips_what_is_not_retryable_and_says_why(as_user, operator, workspace):
    timeout = job_in("failed", workspace=workspace, failure_class="timeout")
    blocked = job_in("failed", workspace=workspace, failure_class="policy_block")
    client = as_user(operator)

    page = choose(client, "retry_jobs", [timeout, blocked]).content.decode()
    response = confirm(client, "retry_jobs", [timeout, blocked])

    assert "A job that failed with policy_block cannot be retried" in page
    assert (status(timeout), status(blocked)) == ("queued", "failed")
    assert JobAttempt.objects.filter(job=timeout, reason=AttemptReason.RETRY).count() == 1
    assert messages_of(response) == [
        f"Retried 1 job: {timeout.public_id}.",
        f"Skipped 1 job ({blocked.public_id}): A job that failed with policy_block cannot be retried: the same input "
        "would fail the same way. Revise the input (revise or rerun) instead.",
    ]


def test_expire_archive_and_unarchive(as_user, operator, workspace):
    waiting = job_in("needs_review", workspace=workspace)
    done = job_in("completed", workspace=workspace)
    client = as_user(operator)

    confirm(client, "expire_jobs", [waiting], reason="The board meeting has passed.")
    confirm(client, "archive_jobs", [done])

    assert status(waiting) == "expired"
    assert JobEvent.objects.get(job=waiting, action="expired").reason == "The board meeting has passed."
    assert ReportJob.objects.get(pk=done.pk).archived_at is not None
    assert done.public_id not in client.get(URL).content.decode()

    response = confirm(client, "unarchive_jobs", [done], query="?archived=yes")
    assert messages_of(response) == [f"Unarchived 1 job: {done.public_id}."]
    assert ReportJob.objects.get(pk=done.pk).archived_at is None


def test_canceling_a_canceled_job_changes_nothing_and_says_so(as_user, operator, workspace):
    canceled = job_in("canceled", workspace=workspace)

    response = confirm(as_user(operator), "cancel_jobs", [canceled], reason="Again")

    assert messages_of(response) == [f"Already canceled, nothing changed: {canceled.public_id}."]
    assert not JobEvent.objects.filter(job=canceled).exists()


def test_select_across_acts_on_every_job_the_filters_match(as_user, operator, workspace):
    running = [job_in("running", workspace=workspace) for _ in range(3)]
    queued = job_in("queued", workspace=workspace)
    client = as_user(operator)

    page = client.post(URL + "?status__exact=running", {
        "action": "cancel_jobs", "_selected_action": [running[0].pk], "index": 0, "select_across": 1,
    }).content.decode()
    assert "3 jobs will be canceled" in page and 'name="select_across" value="1"' in page
    confirm(client, "cancel_jobs", [running[0]], reason="Provider outage", query="?status__exact=running", select_across=1)

    assert [status(j) for j in running] == ["canceled"] * 3
    assert status(queued) == "queued"


def test_more_than_the_bulk_limit_is_refused(as_user, operator, workspace, monkeypatch):
    monkeypatch.setattr(jobs.admin, "BULK_LIMIT", 2)
    many = [job_in("queued", workspace=workspace) for _ in range(3)]

    response = choose(as_user(operator), "cancel_jobs", many)

    assert response.status_code == 302
    assert [status(j) for j in many] == ["queued"] * 3
    assert "More than 2 jobs selected" in messages_of(as_user(operator).get(URL))[0]


def test_a_requester_cancels_only_their_own(as_user, requester, workspace):
    mine = job_in("queued", workspace=workspace, requested_by=requester)
    theirs = job_in("queued", workspace=workspace)

    response = confirm(as_user(requester), "cancel_jobs", [mine, theirs], reason="Duplicate")

    assert (status(mine), status(theirs)) == ("canceled", "queued")
    assert messages_of(response)[1] == f"Skipped 1 job ({theirs.public_id}): Requesters may cancel only their own jobs."


def test_a_reviewer_cannot_run_the_cancel_action_at_all(as_user, reviewer, workspace):
    running = job_in("running", workspace=workspace)
    client = as_user(reviewer)

    confirm(client, "cancel_jobs", [running], reason="Trying anyway")

    assert status(running) == "running"
    assert client.get(f"{URL}{running.public_id}/act/cancel/").status_code == 403
    assert client.post(f"{URL}{running.public_id}/act/cancel/", {"reason": "Trying anyway"}).status_code == 403
    assert status(running) == "running"


class TestOneJobButtons:
    def test_the_button_confirms_then_acts_and_returns_to_the_job_page(self, as_user, operator, workspace):
        running = job_in("running", workspace=workspace)
        client = as_user(operator)
        url = f"{URL}{running.public_id}/act/cancel/"

        page = client.get(url).content.decode()
        refused = client.post(url, {"reason": ""})
        done = client.post(url, {"reason": "Client withdrew the request."})

        assert "1 job will be canceled" in page and running.public_id in page
        assert refused.status_code == 200 and "Say why" in refused.content.decode()
        assert done.status_code == 302 and done.url == f"{URL}{running.public_id}/change/"
        assert JobEvent.objects.get(job=running, action="canceled").reason == "Client withdrew the request."
        assert f"Canceled 1 job: {running.public_id}." in client.get(done.url).content.decode()

    def test_a_state_that_moved_on_meanwhile_is_refused_by_the_service(self, as_user, operator, workspace):
        running = job_in("running", workspace=workspace)
        client = as_user(operator)
        url = f"{URL}{running.public_id}/act/cancel/"
        assert "1 job will be canceled" in client.get(url).content.decode()
        ReportJob.objects.filter(pk=running.pk).update(status=JobStatus.COMPLETED)

        page = client.post(url, {"reason": "Too late"}, follow=True)

        assert status(running) == "completed"
        assert messages_of(page) == [
            f"Skipped 1 job ({running.public_id}): Cannot cancel a job that is completed. Allowed now: open, export, archive."
        ]

    def test_unknown_actions_and_other_workspaces_jobs(self, as_user, operator, other_workspace, workspace):
        theirs = job_in("running", workspace=other_workspace)
        mine = job_in("running", workspace=workspace)
        client = as_user(operator)

        assert client.get(f"{URL}{mine.public_id}/act/delete/").status_code == 404
        response = client.post(f"{URL}{theirs.public_id}/act/cancel/", {"reason": "Not mine"})
        assert response.status_code == 302 and response.url == "/admin/"
        assert status(theirs) == "running"

    def test_the_button_works_with_the_public_id_too(self, as_user, operator, workspace):
        done = job_in("completed", workspace=workspace)

        response = as_user(operator).post(f"{URL}{done.public_id}/act/archive/", {"reason": ""})

        assert response.status_code == 302 and ReportJob.objects.get(pk=done.pk).archived_at is not None
