"""The metrics dashboard in a real headless Chromium: reached from the admin index, charts
drawn as inline SVG, nothing loaded from outside the app."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import JobAttempt, JobEvent, ReportJob
from reportdesk.models import Role
from tests.admin.builders import job_in
from tests.browser.conftest import screenshot
from tests.factories import JobEventFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_dashboard_renders_its_charts_from_the_app_alone(page, login, live_server):
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    other = WorkspaceFactory(slug="elsewhere")
    operator = member(workspace, Role.OPERATOR, username="olga")
    now = timezone.now()
    for days_ago, status, cost in [(1, "completed", "0.40"), (2, "completed", "0.20"), (2, "running", "0"),
                                   (4, "failed", "0.10"), (6, "needs_review", "0.05"), (9, "canceled", "0")]:
        job = job_in(status, workspace=workspace, failure_class="timeout")
        created = now - dt.timedelta(days=days_ago)
        ReportJob.objects.filter(pk=job.pk).update(
            created_at=created, cost_usd=Decimal(cost), runtime_seconds=60 * days_ago,
            version=1 if status in ("completed", "needs_review") else 0,
        )
        JobAttempt.objects.filter(job=job).update(started_at=created + dt.timedelta(seconds=5 * days_ago))
        if status == "failed":
            event = JobEventFactory(job=job, action="failed", details={"failure_class": "timeout"})
            JobEvent.objects.filter(pk=event.pk).update(at=now - dt.timedelta(days=days_ago))
    job_in("completed", workspace=other, topic="Not mine")
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    login(operator)
    page.get_by_role("link", name="Metrics dashboard").click()
    page.wait_for_url("**/admin/jobs/reportjob/metrics/")

    cards = page.locator(".rd-card")
    assert cards.filter(has_text="Reports submitted").locator(".rd-card-value").inner_text() == "6"
    # 0.75 spent over 2 completed reports.
    assert cards.filter(has_text="Cost per completed report").locator(".rd-card-value").inner_text() == "$0.3750"
    over_time = page.locator("#chart-states-over-time svg")
    assert over_time.locator("rect").count() == 6  # one segment per job-day-status here
    assert page.locator("#chart-by-status svg rect").count() == 9
    assert page.locator("#chart-retry-rate text.rd-axis").all_text_contents() == ["Timeout"]
    assert page.locator("#chart-retry-rate text.rd-value-label").all_text_contents() == ["0%"]
    screenshot(page, "dashboard_30_days")

    page.select_option("select[name=days]", "7")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**days=7**")
    assert cards.filter(has_text="Reports submitted").locator(".rd-card-value").inner_text() == "5"
    assert page.locator("#chart-states-over-time svg rect").count() == 5
    assert all(url.startswith(live_server.url) for url in requests), [u for u in requests if not u.startswith(live_server.url)]
