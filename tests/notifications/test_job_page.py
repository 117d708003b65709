"""The job page shows what was sent about the job: mails and chat by person, webhooks by
the receiver's host only (a receiver URL may carry a token, and the whole workspace sees
the page)."""

from __future__ import annotations

import pytest

from notifications.models import EndpointDelivery, Notice, WebhookEndpoint
from notifications.signing import secret_new
from tests.factories import ReportJobFactory

pytestmark = pytest.mark.django_db


def sent_section(client, job) -> str:
    response = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('id="sent"')
    return html[start: html.index("</section>", start)]


def test_the_job_page_lists_mails_and_webhook_deliveries(client, ws, requester, reviewer):
    job = ReportJobFactory(workspace=ws, requested_by=requester)
    Notice.objects.create(channel="email", kind="draft_ready", job=job, workspace=ws, user=reviewer, recipient=reviewer.email,
                          subject="Draft ready", status="sent", dedupe_key="k1")
    endpoint = WebhookEndpoint.objects.create(workspace=ws, url="https://hooks.example.com/t/SECRET-TOKEN", events=["*"], secret=secret_new())
    EndpointDelivery.objects.create(endpoint=endpoint, job=job, event_type="job.needs_review", msg_id="msg_1", payload="{}",
                                    status="failed", attempts=7, last_status_code=502, last_error="The endpoint answered HTTP 502.")
    client.force_login(requester)

    html = sent_section(client, job)

    assert "Draft ready for review" in html and reviewer.get_username() in html and reviewer.email not in html
    assert "hooks.example.com" in html and "SECRET-TOKEN" not in html
    assert "job.needs_review" in html and "7 attempts · HTTP 502" in html and "failed" in html


def test_a_job_with_nothing_sent_says_so(client, ws, requester):
    job = ReportJobFactory(workspace=ws, requested_by=requester)
    client.force_login(requester)

    assert "Nothing sent yet." in sent_section(client, job)
