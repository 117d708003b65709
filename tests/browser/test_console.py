"""The operator console in a real headless Chromium: what an operator, a requester and a
reviewer see and do. Screenshots of each test are kept in test-artifacts/screenshots/."""

import pytest

from jobs.models import JobEvent, JobStatus, ReportJob
from reportdesk.models import Role
from tests.admin.builders import job_in, report_json, store_report
from tests.browser.conftest import screenshot
from tests.factories import WorkspaceFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops", name="Research Ops")


def test_operator_filters_to_running_jobs_and_cancels_one_with_a_reason(page, login, workspace):
    operator = member(workspace, Role.OPERATOR, username="olga")
    running = job_in("running", workspace=workspace, topic="Heat pump retrofit economics")
    job_in("running", workspace=workspace, topic="Grid-scale storage tenders")
    job_in("completed", workspace=workspace, topic="Completed market scan")

    login(operator)
    page.goto("/admin/jobs/reportjob/")
    page.locator("#changelist-filter").get_by_role("link", name="Generating report").click()
    page.wait_for_url("**status__exact=running**")
    assert page.locator("#result_list tbody tr").count() == 2
    assert page.get_by_text("Completed market scan").count() == 0
    screenshot(page, "console_running_jobs")

    page.get_by_role("link", name=running.public_id).click()
    assert "Running in the background" in page.locator("#user-copy").inner_text()
    screenshot(page, "console_job_page_running")
    page.get_by_role("link", name="Cancel", exact=True).click()

    assert "1 job will be canceled" in page.locator("#will-change").inner_text()
    reason = page.locator("textarea[name=reason]")
    assert reason.get_attribute("required") is not None  # the browser asks for it; so does the server
    page.fill("textarea[name=reason]", "Requester asked to stop: wrong topic.")
    page.get_by_role("button", name="Cancel 1 job").click()

    page.wait_for_url(f"**/admin/jobs/reportjob/{running.public_id}/change/")
    assert f"Canceled 1 job: {running.public_id}." in page.locator(".messagelist").inner_text()
    assert page.locator(".rd-state .rd-badge").first.inner_text() == "Canceled"
    assert page.locator("#user-copy").inner_text().startswith("Stopped; it will not continue.")
    last = page.locator("#timeline tbody tr").last
    assert "canceled" in last.locator(".rd-action").inner_text()
    assert "olga" in last.inner_text() and "Requester asked to stop: wrong topic." in last.inner_text()
    assert page.get_by_role("link", name="Cancel", exact=True).count() == 0
    event = JobEvent.objects.get(job=running, action="canceled")
    assert (event.actor_name, event.reason) == ("olga", "Requester asked to stop: wrong topic.")


def test_bulk_retry_skips_a_job_that_is_not_retryable_and_says_why(page, login, workspace):
    operator = member(workspace, Role.OPERATOR, username="olga")
    timeout = job_in("failed", workspace=workspace, failure_class="timeout", topic="Timed out scan")
    blocked = job_in("failed", workspace=workspace, failure_class="policy_block", topic="Blocked scan")

    login(operator)
    page.goto("/admin/jobs/reportjob/?status__exact=failed")
    page.locator("#action-toggle").check()
    page.select_option("select[name=action]", "retry_jobs")
    page.get_by_role("button", name="Go").click()

    assert "1 job will be retried" in page.locator("#will-change").inner_text()
    assert "1 job will be skipped" in page.locator("#will-skip").inner_text()
    assert "failed with policy_block cannot be retried" in page.locator(".rd-skip").inner_text()
    assert blocked.public_id in page.locator(".rd-skip").inner_text()
    screenshot(page, "console_bulk_retry_confirmation")
    page.get_by_role("button", name="Retry 1 job").click()

    messages = page.locator(".messagelist").inner_text()
    assert f"Retried 1 job: {timeout.public_id}." in messages
    assert f"Skipped 1 job ({blocked.public_id}): A job that failed with policy_block cannot be retried" in messages
    screenshot(page, "console_bulk_retry_done")
    assert ReportJob.objects.get(pk=timeout.pk).status == JobStatus.QUEUED
    assert ReportJob.objects.get(pk=blocked.pk).status == JobStatus.FAILED


def test_a_reviewer_does_not_get_the_cancel_action(page, login, workspace):
    reviewer = member(workspace, Role.REVIEWER, username="rita")
    running = job_in("running", workspace=workspace)

    login(reviewer)
    page.goto("/admin/jobs/reportjob/")
    assert page.get_by_text(running.topic).count() == 1
    assert page.locator("select[name=action] option[value=cancel_jobs]").count() == 0
    page.goto(f"/admin/jobs/reportjob/{running.public_id}/change/")
    assert page.locator(".rd-buttons").count() == 0
    assert page.get_by_role("link", name="Cancel", exact=True).count() == 0
    response = page.goto(f"/admin/jobs/reportjob/{running.public_id}/act/cancel/")
    assert response.status == 403


def test_a_requester_may_cancel_only_their_own_jobs(page, login, workspace):
    requester = member(workspace, Role.REQUESTER, username="remy")
    mine = job_in("queued", workspace=workspace, requested_by=requester, topic="My own scan")
    theirs = job_in("queued", workspace=workspace, topic="A colleague's scan")

    login(requester)
    page.goto("/admin/jobs/reportjob/")
    page.locator("#action-toggle").check()
    page.select_option("select[name=action]", "cancel_jobs")
    page.get_by_role("button", name="Go").click()
    assert "Requesters may cancel only their own jobs." in page.locator(".rd-skip").inner_text()
    page.fill("textarea[name=reason]", "Duplicate request.")
    page.get_by_role("button", name="Cancel 1 job").click()

    assert f"Canceled 1 job: {mine.public_id}." in page.locator(".messagelist").inner_text()
    assert ReportJob.objects.get(pk=theirs.pk).status == JobStatus.QUEUED


MALICIOUS = report_json(
    title='Report <script>alert("title")</script>',
    executive_summary='Summary <img src=x onerror="alert(\'img\')"> and <a href="javascript:alert(\'link\')">click me</a>.',
    sections=[
        {"heading": "Overview <svg onload=alert('svg')>", "body": "Body <script>alert('body')</script> [S1]", "citations": ["S1"]},
        {"heading": "More", "body": "[Markdown link](javascript:alert('md')) and <iframe src=\"javascript:alert('frame')\"></iframe>"},
    ],
)


def test_model_output_with_scripts_handlers_and_javascript_links_is_inert_on_the_job_page(page, login, workspace):
    operator = member(workspace, Role.OPERATOR, username="olga")
    job = store_report(job_in("queued", workspace=workspace, topic="Untrusted model output"), MALICIOUS)
    assert job.status == JobStatus.NEEDS_REVIEW

    login(operator)
    page.goto(f"/admin/jobs/reportjob/{job.public_id}/change/")
    page.wait_for_load_state("load")
    report = page.locator("article.rd-report")

    assert "Overview" in report.inner_text() and "click me" in report.inner_text()
    assert page.dialogs == []
    assert "<script" not in report.inner_html()
    assert page.locator("article.rd-report script, article.rd-report iframe, article.rd-report svg, article.rd-report img").count() == 0
    assert page.locator("article.rd-report [onerror], article.rd-report [onload]").count() == 0
    assert page.locator("article.rd-report a[href^='javascript']").count() == 0
    report.get_by_text("click me").click()
    page.wait_for_timeout(200)
    assert page.dialogs == []
    screenshot(page, "console_untrusted_report_inert")
