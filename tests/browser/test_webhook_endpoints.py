"""An operator's round with outbound webhooks in headless Chromium: register an endpoint and
copy its secret, see a delivery the receiver refused in the delivery log, redeliver it, and
see it succeed. The receiver is a real HTTP server on loopback; tasks run inline."""

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from jobs import services as job_services
from jobs.models import ReportJob
from reportdesk.models import Role
from tests.browser.conftest import screenshot
from tests.factories import ReportJobFactory, WorkspaceFactory, member
from tests.notifications.conftest import inline_tasks, receiver  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_registers_an_endpoint_sees_a_failed_delivery_and_redelivers_it(page, login, settings, receiver, inline_tasks):  # noqa: F811
    settings.WEBHOOK_RETRY_SCHEDULE = []  # no automatic retry: the delivery fails at once
    workspace = WorkspaceFactory(slug="research-ops", name="Research Ops")
    operator = member(workspace, Role.OPERATOR, username="olga")
    job = ReportJobFactory(workspace=workspace, requested_by=member(workspace, Role.REQUESTER, username="remy"))
    ReportJob.objects.filter(pk=job.pk).update(status="running")

    # Register the endpoint in the admin; the secret is shown once.
    login(operator)
    page.goto("/admin/notifications/webhookendpoint/add/")
    page.select_option("#id_workspace", label="Research Ops")
    page.fill("#id_url", receiver.url())
    page.uncheck("input[name=events][value='*']")
    page.check("input[name=events][value='job.canceled']")
    page.click("input[name=_save]")
    secret_shown = page.locator("#webhook-secret")
    expect(secret_shown).to_contain_text("whsec_")
    secret = secret_shown.inner_text().strip()
    screenshot(page, "webhook-endpoint-secret")

    # The job is canceled; the receiver answers 500.
    receiver.answer(500)
    job_services.job_cancel(job=ReportJob.objects.get(pk=job.pk), actor=operator, reason="No longer needed")
    assert len(receiver.requests) == 1

    # The operator finds the failed delivery in the log.
    page.goto("/admin/notifications/endpointdelivery/")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("job.canceled")
    expect(row).to_contain_text("Failed")
    expect(row).to_contain_text("500")
    screenshot(page, "webhook-delivery-failed")

    # ... and redelivers it.
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "redeliver")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("Redelivering 1 delivery")
    expect(page.locator("#result_list tbody tr").first).to_contain_text("Succeeded")
    screenshot(page, "webhook-delivery-redelivered")

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert Webhook(secret).verify(second.body, second.headers)["type"] == "job.canceled"
