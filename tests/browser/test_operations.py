"""Following work across the admin in headless Chromium: an operator watches a real worker
cluster on the workers page and reads a job's task records; a reviewer goes from the job page
to the review page, decides, and comes back."""

import re

import pytest
from playwright.sync_api import expect

from jobs import services as job_services
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.admin.builders import job_in, report_json, store_report
from tests.browser.conftest import screenshot
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = "Battery recycling capacity in Europe grew 40% in 2025. Recyclers recover lithium, cobalt and nickel."


@pytest.mark.slow
def test_an_operator_watches_the_cluster_and_reads_a_jobs_task_records(page, login, worker):
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    operator = member(workspace, Role.OPERATOR, username="olga")
    template = ReportTemplateFactory(slug="market-scan", name="Market scan", required_sections=[], review_required=True)
    process = worker()
    job = job_services.job_submit(
        workspace=workspace, requested_by=member(workspace, Role.REQUESTER, username="remy"), template=template,
        topic="Battery recycling capacity in Europe", audience="Product leadership",
        sources=[SourceSpec(title="Market note", text=SOURCE)],
    )
    wait_for(lambda: job.__class__.objects.get(pk=job.pk).status == "needs_review", timeout=60,
             message=lambda: f"needs_review; worker log:\n{process.log()}")

    login(operator)
    page.get_by_role("link", name="Workers and queues").click()
    # The cluster reports its status every few seconds; the page shows the latest report.
    for _ in range(20):
        if page.locator("#clusters tr.rd-cluster").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    cluster = page.locator("#clusters tr.rd-cluster").first
    expect(cluster).to_be_visible()
    assert int(cluster.locator("td").nth(3).inner_text()) >= 1  # worker processes
    expect(page.locator("#dispatcher .rd-fact")).to_contain_text("Alive: last heartbeat")
    screenshot(page, "operations_workers_page")

    # The job's task records open for an operator, scoped to the job. Successful advance
    # tasks are not saved (they run by the thousand; the job keeps its own state), so the
    # records an operator finds are the failures and what is still queued.
    page.goto(f"/admin/jobs/reportjob/{job.public_id}/change/")
    expect(page.locator("#tasks")).to_contain_text(f"advance job {job.pk}")
    page.locator("#tasks").get_by_role("link", name="Failed runs").click()
    expect(page.locator("#content")).not_to_contain_text("Not open to you")
    expect(page).to_have_url(re.compile(r"/admin/django_q/failure/"))
    screenshot(page, "operations_task_records")


def test_a_reviewer_goes_from_the_job_page_to_the_review_page_decides_and_comes_back(page, login):
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    reviewer = member(workspace, Role.REVIEWER, username="rita")
    template = ReportTemplateFactory(name="Market scan", required_sections=[], review_required=True)
    job = store_report(job_in("queued", workspace=workspace, template=template, topic="Battery recycling in Europe"), report_json())

    login(reviewer)
    page.goto("/admin/jobs/reportjob/")
    page.get_by_role("link", name=job.public_id).click()
    page.locator("#review-page-link").click()
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/reviews/review/draft/{job.public_id}/")

    page.get_by_role("button", name="Claim").click()
    page.fill("#id_comment", "Good enough to ship.")
    for box in page.locator("input[name=checklist]").all():
        box.check()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Approved version 1 of {job.public_id}")

    page.goto(f"/admin/reviews/review/draft/{job.public_id}/")
    page.locator("#job-page-link").click()
    expect(page.locator(".rd-state .rd-badge").first).to_have_text("Completed")
    expect(page.locator("#timeline")).to_contain_text("Good enough to ship.")
    screenshot(page, "operations_reviewer_back_on_the_job_page")
