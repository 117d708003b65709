"""The job page: state and buttons, why it is not moving, the timeline, attempts, sources,
the report and its versions, the task records; scoped, read-only and with a fixed query budget."""

import datetime as dt
import uuid

import pytest
import time_machine
from django.utils import timezone
from django_q.models import Task

from jobs import services
from jobs.worker.lease import dispatcher_lease_acquire as dispatcher_acquire
from jobs.models import JobAttempt, ReportJob, ReportTemplate
from reportdesk.models import Role
from reviews.services import review_claim
from sources.models import SourceStatus
from tests.admin.builders import job_in, report_json, store_report
from tests.factories import (
    JobEventFactory,
    ProviderCallFactory,
    ReviewCommentFactory,
    ReviewFactory,
    SourceItemFactory,
    SourceManifestFactory,
    member,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


def page_of(client, job, **params):
    response = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/", params)
    assert response.status_code == 200
    return response.content.decode()


def buttons(html: str) -> list[str]:
    import re

    return re.findall(r'class="button rd-act rd-act-(\w+)"', html)


def section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    return html[start: html.index("</section>", start)]


def with_history(job, *, events: int, attempts: int, calls: int, sources: int):
    """Give `job` a long history: events, attempts with provider calls, sources, a review."""
    workspace = job.workspace
    manifest = SourceManifestFactory(workspace=workspace, items=[SourceItemFactory(workspace=workspace) for _ in range(sources)])
    ReportJob.objects.filter(pk=job.pk).update(source_manifest=manifest)
    for n in range(2, attempts + 1):
        attempt = JobAttempt.objects.create(job=job, number=n, reason="retry", manifest=manifest)
        for _ in range(calls):
            ProviderCallFactory(attempt=attempt, job=job)
    for _ in range(events):
        JobEventFactory(job=job, action="provider_retry_scheduled", reason="HTTP 503")
    review = ReviewFactory(job=job, decided_at=timezone.now(), decision="reject")
    ReviewCommentFactory(review=review, body="A section comment.")
    job.refresh_from_db()
    return job


# session, user, memberships, permissions (user, group), the job; then the open claim or
# the heartbeat, events, comments, mails and webhook deliveries sent, attempts, calls, sources,
# versions, report, task records; the provider holds for the operators' banner.
@pytest.mark.parametrize("jobs", [1, 200])
@pytest.mark.parametrize(("who", "queries"), [("operator", 19), ("superuser", 16)])
def test_the_page_costs_the_same_queries_for_1_and_200_jobs(jobs, who, queries, request, as_user, workspace, django_assert_num_queries):
    client = as_user(request.getfixturevalue(who))
    for _ in range(jobs - 1):
        job_in("running", workspace=workspace)
    job = with_history(store_report(job_in("running", workspace=workspace), report_json()), events=3, attempts=2, calls=2, sources=2)

    with django_assert_num_queries(queries):
        page_of(client, job)


@pytest.mark.parametrize("size", ["short", "long"])
def test_the_page_costs_the_same_queries_however_long_the_history(size, as_user, operator, workspace, django_assert_num_queries):
    n = {"short": 1, "long": 40}[size]
    job = with_history(job_in("running", workspace=workspace), events=n * 5, attempts=n, calls=3, sources=n)
    client = as_user(operator)

    with django_assert_num_queries(19):  # no draft: no artifact to read; the running step
        html = page_of(client, job)
    assert section(html, "timeline").count("<tr class=\"rd-event") == n * 5 + 1  # + the review comment


@pytest.mark.parametrize(
    ("status", "kwargs", "expected"),
    [
        ("queued", {}, ["cancel", "expire", "edit"]),
        ("running", {}, ["cancel", "expire"]),
        ("needs_review", {}, ["expire"]),  # reviewing is the review page's, linked beside the buttons
        ("failed", {"failure_class": "timeout"}, ["retry", "archive", "revise", "rerun"]),
        ("failed", {"failure_class": "policy_block"}, ["archive", "revise", "rerun"]),
        ("completed", {}, ["archive"]),
        ("completed", {"archived": True}, ["unarchive"]),
    ],
)
def test_the_buttons_are_the_actions_job_state_allows_now(status, kwargs, expected, as_user, operator, workspace):
    job = job_in(status, workspace=workspace, **kwargs)

    assert buttons(page_of(as_user(operator), job)) == expected


def test_reviewers_get_no_buttons_and_requesters_only_on_their_own_jobs(as_user, reviewer, requester, workspace):
    theirs = job_in("running", workspace=workspace)
    mine = job_in("running", workspace=workspace, requested_by=requester)

    assert buttons(page_of(as_user(reviewer), theirs)) == []
    assert buttons(page_of(as_user(requester), theirs)) == []
    assert buttons(page_of(as_user(requester), mine)) == ["cancel"]


def test_the_page_shows_the_user_copy_and_the_cost_summary(as_user, operator, workspace):
    job = job_in("failed", workspace=workspace, failure_class="timeout")
    ReportJob.objects.filter(pk=job.pk).update(cost_usd="0.1234", input_tokens=1500, output_tokens=700, retries=2)

    html = page_of(as_user(operator), job)

    assert "Stopped before completion: Timeout. The provider said no (timeout)." in html
    assert "$0.1234" in html and "1500 in" in html and "700 out" in html and "2 retries" in html
    assert "Timeout</strong> (retryable)" in html


def test_an_offline_draft_is_marked_as_such(as_user, operator, workspace):
    offline = job_in("needs_review", workspace=workspace, model="local-extractive")
    online = job_in("needs_review", workspace=workspace, model="gpt-5.2")

    assert 'id="offline-draft"' in page_of(as_user(operator), offline)
    assert 'id="offline-draft"' not in page_of(as_user(operator), online)


class TestWhyIsntThisMoving:
    @time_machine.travel(NOW, tick=False)
    def test_due_with_no_worker_alive(self, as_user, operator, workspace):
        job = job_in("queued", workspace=workspace)
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=NOW - dt.timedelta(minutes=5))

        why = section(page_of(as_user(operator), job), "why")

        assert "Waiting for a worker: due since 2026-03-02 11:55:00 UTC (5\xa0minutes ago)." in why
        assert "No worker heartbeat has ever been recorded: is `manage.py qcluster` running?" in why

    @time_machine.travel(NOW, tick=False)
    def test_a_worker_holds_it_and_the_dispatcher_is_alive(self, as_user, operator, workspace, settings):
        settings.LEASE_SECONDS = 120
        job = job_in("running", workspace=workspace)
        ReportJob.objects.filter(pk=job.pk).update(lease_token="abc", lease_expires_at=NOW + dt.timedelta(seconds=90))
        dispatcher_acquire(token="dispatcher-1", now=NOW - dt.timedelta(seconds=3))

        why = section(page_of(as_user(operator), job), "why")

        assert "A worker holds the job: lease held since 2026-03-02 11:59:30 UTC (30 s ago)." in why
        assert "Next check at 2026-03-02 12:00:30 UTC (in 30 s)." in why
        assert f"Provider response {job.provider_response_id}; last checked 2026-03-02 11:59:40 UTC (20 s ago)." in why
        assert "Times out at 2026-03-02 12:27:00 UTC" in why
        assert "The dispatcher is alive (last heartbeat 3 s ago)." in why

    def test_a_template_edited_since_the_attempt_began(self, as_user, operator, workspace):
        job = job_in("running", workspace=workspace)
        template = job.template
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(template_settings=template.run_settings())
        assert "The template was edited" not in section(page_of(as_user(operator), job), "why")

        template.model, template.instructions, template.name = "gpt-5.4", "Something else.", "Renamed"
        template.save()
        why = section(page_of(as_user(operator), job), "why")

        assert "The template was edited after this attempt began (instructions, model): the attempt runs as it began." in why
        # the summary names the template as it is, and how this attempt runs it
        assert "Renamed <span class=\"quiet\">(single response, gpt-5.2)</span>" in page_of(as_user(operator), job)

    def test_a_template_edited_since_the_draft_was_written(self, as_user, operator, workspace):
        job = job_in("needs_review", workspace=workspace)
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(template_settings=job.template.run_settings())
        ReportTemplate.objects.filter(pk=job.template_id).update(required_sections=["Appendix Z"])

        why = section(page_of(as_user(operator), job), "why")

        assert "The template was edited after the attempt that wrote this draft began (required sections): the draft is checked by the rules it was written under." in why

    @time_machine.travel(NOW, tick=False)
    def test_retry_backoff_and_a_silent_dispatcher(self, as_user, operator, workspace):
        job = job_in("running", workspace=workspace)
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(provider_retries=2, last_error="HTTP 503 from the provider")
        dispatcher_acquire(token="dispatcher-1", now=NOW - dt.timedelta(minutes=10))

        why = section(page_of(as_user(operator), job), "why")

        assert "Retry backoff until 2026-03-02 12:00:30 UTC (in 30 s): automatic provider retry 2 of 3 after “HTTP 503 from the provider”." in why
        assert "No worker heartbeat: the dispatcher was last seen 2026-03-02 11:50:00 UTC (10\xa0minutes ago)." in why

    @time_machine.travel(NOW, tick=False)
    def test_an_expired_lease_and_a_passed_deadline(self, as_user, operator, workspace):
        job = job_in("running", workspace=workspace)
        ReportJob.objects.filter(pk=job.pk).update(
            lease_token="dead", lease_expires_at=NOW - dt.timedelta(minutes=1), deadline=NOW - dt.timedelta(hours=1),
        )

        why = section(page_of(as_user(operator), job), "why")

        assert "A worker&#x27;s lease expired 2026-03-02 11:59:00 UTC (60 s ago)" in why
        assert "The deadline passed 2026-03-02 11:00:00 UTC (1\xa0hour ago); the expiry sweep will expire the job." in why

    def test_a_job_held_by_its_budget_says_so(self, as_user, operator, workspace):
        from decimal import Decimal

        from jobs.models import ProviderCall

        job = job_in("running", workspace=workspace)
        ReportTemplate.objects.filter(pk=job.template_id).update(name="Deep dive", cost_cap_usd=Decimal("0.50"))
        ReportJob.objects.filter(pk=job.pk).update(cost_usd=Decimal("0.35"))
        client = as_user(operator)
        ProviderCall.objects.filter(job=job).update(status="in_progress", estimated_cost_usd=Decimal("0.10"))
        assert "Waiting:" not in section(page_of(client, job), "why")  # $0.45 of $0.50: room left

        ProviderCall.objects.filter(job=job).update(estimated_cost_usd=Decimal("0.20"))
        why = section(page_of(client, job), "why")

        assert ("Waiting: the 1 response(s) still running may take the job to the template Deep dive&#x27;s cost cap "
                "of $0.50. No new provider call starts until they end; then their cost decides.") in why

    def test_a_draft_waits_for_a_reviewer_or_shows_who_claimed_it(self, as_user, operator, reviewer, workspace):
        job = store_report(job_in("queued", workspace=workspace), report_json())
        client = as_user(operator)

        assert "Waiting for a reviewer since" in section(page_of(client, job), "why")
        review_claim(job=job, reviewer=reviewer)
        assert "Claimed by rita since" in section(page_of(client, job), "why")

    def test_a_finished_job_is_not_moving_by_design(self, as_user, operator, workspace):
        assert "Not moving by design: the job is completed" in section(page_of(as_user(operator), job_in("completed", workspace=workspace)), "why")
        blocked = job_in("failed", workspace=workspace, failure_class="policy_block")
        assert "it is not retryable: revise the input or rerun" in section(page_of(as_user(operator), blocked), "why")


def test_one_timeline_of_operations_and_review_with_who_when_and_why(as_user, operator, reviewer, workspace):
    requester = member(workspace, Role.REQUESTER, username="remy")
    job = services.job_submit(
        workspace=workspace, requested_by=requester, template=job_in("queued", workspace=workspace).template,
        topic="Grid storage", sources=[services.SourceSpec(title="Note", text="Storage tenders doubled.")],
    )
    job = store_report(job, report_json())
    review_claim(job=job, reviewer=reviewer)
    ReviewCommentFactory(review=job.reviews.get(), author=reviewer, body="Section 2 needs a source.", section="Findings")
    from reviews.services import review_decide

    review_decide(job=job, reviewer=reviewer, decision="request_revision", comment="Cite the tender figures.")

    timeline = section(page_of(as_user(operator), job), "timeline")

    actions = [a for a in ("submitted", "draft_ready", "claimed", "commented", "revision_requested") if a in timeline]
    assert actions == ["submitted", "draft_ready", "claimed", "commented", "revision_requested"]
    assert timeline.index("submitted") < timeline.index("draft_ready") < timeline.index("revision_requested")
    assert "remy" in timeline and "system (worker)" in timeline and "rita" in timeline
    assert "Section 2 needs a source." in timeline and "section: Findings" in timeline
    # The decision's comment is its event's reason: shown once, not again as a comment.
    assert timeline.count("Cite the tender figures.") == 1
    assert "needs_review → queued" in timeline


def test_attempts_show_their_provider_calls_with_usage_and_cost(as_user, operator, workspace):
    job = store_report(job_in("running", workspace=workspace), report_json(), cost="0.0456")
    call = job.provider_calls.get()

    attempts = section(page_of(as_user(operator), job), "attempts")

    assert "Attempt 1 · Initial · succeeded · produced version 1" in attempts
    assert call.provider_response_id in attempts
    assert "1200 (200)" in attempts and "800 (100)" in attempts and "$0.0456" in attempts


def test_an_orphan_response_is_shown_beside_the_one_the_job_follows(as_user, operator, workspace):
    job = job_in("running", workspace=workspace)
    kept = ProviderCallFactory(job=job, attempt=job.current_attempt, status="in_progress")
    orphan = ProviderCallFactory(job=job, attempt=job.current_attempt, status="cancelled", orphan=True)

    attempts = section(page_of(as_user(operator), job), "attempts")

    assert kept.provider_response_id in attempts and orphan.provider_response_id in attempts
    assert attempts.count(">orphan</strong>") == 1


def test_sources_show_their_status_and_errors(as_user, operator, workspace):
    manifest = SourceManifestFactory(workspace=workspace, items=[
        SourceItemFactory(workspace=workspace, title="Good note"),
        SourceItemFactory(workspace=workspace, kind="url", title="", url="https://example.com/gone",
                          status=SourceStatus.FAILED, error="HTTP 404 Not Found"),
    ])
    job = job_in("queued", workspace=workspace, source_manifest=manifest)

    sources = section(page_of(as_user(operator), job), "sources")

    assert "S1" in sources and "Good note" in sources and "S2" in sources
    assert "https://example.com/gone" in sources and "HTTP 404 Not Found" in sources
    assert 'rd-source-failed">Failed' in sources and 'rd-source-ready">Ready' in sources


def test_the_report_has_a_version_switcher(as_user, operator, reviewer, workspace):
    job = store_report(job_in("queued", workspace=workspace), report_json(title="First draft"))
    services.job_request_revision(job=job, actor=reviewer, comment="Tighten it.")
    job = store_report(ReportJob.objects.get(pk=job.pk), report_json(title="Second draft"))
    client = as_user(operator)

    latest = section(page_of(client, job), "report")
    first = section(page_of(client, job, version="1"), "report")

    assert "<h1>Second draft</h1>" in latest and 'aria-current="page">v2' in latest and 'href="?version=1"' in latest
    assert "<h1>First draft</h1>" in first and 'aria-current="page">v1' in first
    assert "<h1>Second draft</h1>" in section(page_of(client, job, version="9"), "report")


def test_untrusted_model_output_reaches_the_page_sanitised_under_a_strict_csp(as_user, operator, workspace):
    job = store_report(job_in("queued", workspace=workspace), report_json(
        title='T <script>alert(1)</script>',
        executive_summary='<img src=x onerror=alert(2)> <a href="javascript:alert(3)">x</a> [y](javascript:alert(4))',
    ))

    response = as_user(operator).get(f"/admin/jobs/reportjob/{job.public_id}/change/")
    report = section(response.content.decode(), "report")

    assert "<script" not in report and "onerror" not in report and "javascript:" not in report and "<img" not in report
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_a_draftless_job_says_so(as_user, operator, workspace):
    assert "No draft yet." in section(page_of(as_user(operator), job_in("running", workspace=workspace)), "report")


def test_task_records_are_counted_and_linked_for_those_who_may_see_them(as_user, operator, requester, superuser, workspace):
    job = job_in("running", workspace=workspace, requested_by=requester)
    now = timezone.now()
    for success in (True, True, False):
        Task.objects.create(id=uuid.uuid4().hex, name=f"advance job {job.pk}", func="jobs.tasks.advance_job",
                            started=now, stopped=now, success=success)
    Task.objects.create(id=uuid.uuid4().hex, name=f"advance job {job.pk}0", func="jobs.tasks.advance_job", started=now, stopped=now)

    as_requester = section(page_of(as_user(requester), job), "tasks")
    as_operator = section(page_of(as_user(operator), job), "tasks")
    as_superuser = section(page_of(as_user(superuser), job), "tasks")

    assert "2 succeeded, 1 failed" in as_requester and "are for operators" in as_requester
    assert "/admin/django_q/" not in as_requester
    for page in (as_operator, as_superuser):
        assert f'href="/admin/django_q/success/?name=advance+job+{job.pk}"' in page
        assert f'href="/admin/django_q/failure/?name=advance+job+{job.pk}"' in page
        assert 'href="/admin/workers/#queue"' in page
    success_list = as_user(superuser).get(f"/admin/django_q/success/?name=advance+job+{job.pk}").content.decode()
    assert success_list.count(f"advance job {job.pk}<") == 2


def test_another_workspaces_job_is_not_there_and_only_a_public_id_finds_a_job(as_user, operator, workspace, other_workspace):
    theirs = job_in("running", workspace=other_workspace)
    mine = job_in("running", workspace=workspace)
    client = as_user(operator)

    response = client.get(f"/admin/jobs/reportjob/{theirs.public_id}/change/")
    assert response.status_code == 302 and response.url == "/admin/"
    # Every URL of a job names its public id; the numeric key is not one of them.
    assert client.get(f"/admin/jobs/reportjob/{mine.pk}/change/").status_code == 302
    assert f"Job {mine.public_id}" in client.get(f"/admin/jobs/reportjob/{mine.public_id}/change/").content.decode()


def test_the_page_is_read_only(as_user, superuser, workspace):
    job = job_in("running", workspace=workspace)
    client = as_user(superuser)

    client.post(f"/admin/jobs/reportjob/{job.public_id}/change/", {"status": "completed"})

    assert ReportJob.objects.get(pk=job.pk).status == "running"
    assert client.get(f"/admin/jobs/reportjob/{job.public_id}/delete/").status_code == 403
