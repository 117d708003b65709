"""Outbound webhooks, end to end: a job changes through jobs.services, the event is handed
over on commit, deliveries are POSTed to a loopback receiver, and every request the receiver
got is verified with the `standardwebhooks` package (written by others, not us)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from jobs import services as jobs_services
from jobs.models import ReportJob
from notifications import services, tasks
from notifications.models import DeliveryAttempt, EndpointDelivery, WebhookEndpoint
from reportdesk.errors import ValidationFailed
from tests.factories import ReportJobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(ws, requester, template):
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()
    return job


@pytest.fixture
def cancel(committed, operator):
    """An operator cancels the job; what that leaves for after commit runs (tasks inline)."""
    return lambda job: committed(jobs_services.job_cancel, job=job, actor=operator, reason="No longer needed")


def register(ws, operator, receiver, events=("*",)) -> tuple[WebhookEndpoint, str]:
    return services.endpoint_create(workspace=ws, actor=operator, url=receiver.url(), events=list(events))


def verified(secret: str, request) -> dict:
    """The payload, if the request's signature verifies with the standard library."""
    return Webhook(secret).verify(request.body, request.headers)


def test_each_event_type_is_delivered_signed_per_standard_webhooks(receiver, cancel, ws, operator, job):
    endpoint, secret = register(ws, operator, receiver)
    assert secret.startswith("whsec_")

    cancel(job)

    assert len(receiver.requests) == 2
    payloads = [verified(secret, request) for request in receiver.requests]
    assert [p["type"] for p in payloads] == ["job.status_changed", "job.canceled"]
    data = payloads[1]["data"]
    assert (data["id"], data["workspace"], data["status"], data["previous_status"]) == (job.public_id, "acme", "canceled", "running")
    assert data["event"]["actor"] == "olga" and data["url"].endswith(f"/api/v1/jobs/{job.public_id}/")
    deliveries = EndpointDelivery.objects.filter(endpoint=endpoint).order_by("id")
    assert [r.headers["webhook-id"] for r in receiver.requests] == [d.msg_id for d in deliveries]
    assert all(d.status == "succeeded" and d.last_status_code == 200 for d in deliveries)


def test_a_wrong_secret_does_not_verify(receiver, cancel, ws, operator, job):
    register(ws, operator, receiver)
    other_secret = services.endpoint_create(workspace=ws, actor=operator, url=receiver.url("/other"), events=["job.failed"])[1]

    cancel(job)

    with pytest.raises(Exception, match="No matching signature"):
        verified(other_secret, receiver.requests[0])


def test_an_endpoint_gets_only_the_event_types_it_asked_for(receiver, cancel, ws, operator, job):
    _, secret = register(ws, operator, receiver, events=["job.canceled"])

    cancel(job)

    assert [verified(secret, r)["type"] for r in receiver.requests] == ["job.canceled"]


def test_retries_after_a_500_carry_the_same_id_and_stop_once_delivered(settings, receiver, cancel, ws, operator, job):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]  # due again at once: the test plays the scheduler
    _, secret = register(ws, operator, receiver, events=["job.canceled"])
    receiver.answer(500)

    cancel(job)
    delivery = EndpointDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert "HTTP 500" in delivery.last_error and delivery.next_attempt_at is not None

    assert tasks.deliveries_due() == 1  # the minute schedule finds the due retry
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.msg_id
    assert first.body == second.body
    assert verified(secret, first) == verified(secret, second)

    # Once delivered, never again: not by the sweep, not by a repeated task.
    assert tasks.deliveries_due() == 0
    tasks.deliver(delivery.pk, "retry")
    assert len(receiver.requests) == 2
    assert [(a.number, a.trigger, a.status_code) for a in DeliveryAttempt.objects.order_by("number")] == [
        (1, "initial", 500), (2, "retry", 200),
    ]


def test_a_delivery_gives_up_after_its_retries_and_can_be_redelivered_with_the_same_id(settings, receiver, cancel, committed, ws, operator, job):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    _, secret = register(ws, operator, receiver, events=["job.canceled"])
    receiver.answer(503, 502)

    cancel(job)
    tasks.deliveries_due()
    delivery = EndpointDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    assert tasks.deliveries_due() == 0

    committed(services.delivery_redeliver, delivery=delivery, actor=operator)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    verified(secret, receiver.requests[-1])


def test_an_internal_address_is_refused_when_registering(settings, ws, operator):
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = []
    for url in ["http://127.0.0.1:8080/hooks", "http://localhost/hooks", "http://10.1.2.3/hooks", "http://[::1]/x", "ftp://example.com/x"]:
        with pytest.raises(ValidationFailed) as refused:
            services.endpoint_create(workspace=ws, actor=operator, url=url, events=["*"])
        assert "url" in refused.value.fields


def test_an_internal_address_is_refused_at_delivery_time_too(settings, receiver, cancel, ws, operator, job):
    settings.WEBHOOK_RETRY_SCHEDULE = []
    register(ws, operator, receiver, events=["job.canceled"])
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = []  # the operator no longer allows the loopback host

    cancel(job)

    assert receiver.requests == []  # nothing left the guard
    delivery = EndpointDelivery.objects.get()
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert "this server itself" in delivery.last_error


def test_an_endpoint_that_keeps_failing_is_disabled_and_its_operators_are_told(settings, smtp, receiver, cancel, committed, ws, operator, requester, template, job):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    endpoint, _ = register(ws, operator, receiver, events=["job.canceled"])
    receiver.answer(500, 500, 500)

    cancel(job)
    committed(tasks.deliveries_due)
    committed(tasks.deliveries_due)

    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.consecutive_failures == 3
    assert "3 delivery attempts in a row failed" in endpoint.disabled_reason
    [mail] = smtp.mails
    assert mail.to == [operator.email] and mail.subject == "A webhook endpoint was disabled"
    assert f"stopped sending to localhost (endpoint {endpoint.pk})" in mail.text
    assert receiver.url() not in mail.text  # a receiver's URL may be its credential
    assert f"https://reports.example.com/admin/notifications/webhookendpoint/{endpoint.pk}/change/" in mail.text

    # A disabled endpoint gets nothing more, and a redelivery asks for it to be enabled first.
    assert tasks.deliveries_due() == 0
    other = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    cancel(other)
    assert len(receiver.requests) == 3
    delivery = EndpointDelivery.objects.get()
    with pytest.raises(Exception, match="enable it first"):
        services.delivery_redeliver(delivery=delivery, actor=operator)

    # Enabled again: the pending retry goes out and succeeds.
    services.endpoint_update(endpoint=endpoint, actor=operator, is_active=True)
    assert committed(tasks.deliveries_due) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.requests) == 4


def test_chat_gets_failed_messages_with_escaped_text(receiver, committed, ws, job):
    from notifications.models import ChatChannel

    ChatChannel.objects.create(workspace=ws, url=receiver.url("/chat"))
    ReportJob.objects.filter(pk=job.pk).update(topic="Costs <b>&</b> margins")
    job.refresh_from_db()

    committed(jobs_services.job_fail, job=job, failure_class="provider_error", message="Upstream said <no>.")

    [request] = receiver.requests
    text = json.loads(request.body)["text"]
    assert "Report failed" in text and "Costs &lt;b&gt;&amp;&lt;/b&gt; margins" in text
    assert "Upstream said &lt;no&gt;." in text
    assert f"/admin/jobs/reportjob/{job.public_id}/change/|Open the job>" in text


def test_the_notify_task_for_an_event_twice_delivers_once(receiver, cancel, ws, operator, job):
    register(ws, operator, receiver, events=["job.canceled"])
    cancel(job)
    event = job.events.get(action="canceled")

    tasks.job_event_notify(event.pk)

    assert EndpointDelivery.objects.count() == 1 and len(receiver.requests) == 1


def test_a_delivery_claimed_by_another_worker_is_not_sent_again(receiver, ws, operator, job):
    endpoint, _ = register(ws, operator, receiver)
    delivery = EndpointDelivery.objects.create(
        endpoint=endpoint, job=job, event_type="job.canceled", msg_id="msg_x", payload="{}",
        next_attempt_at=timezone.now() + dt.timedelta(seconds=60),  # a worker holds it for its try
    )

    assert services.delivery_attempt(delivery_id=delivery.pk) is None
    assert receiver.requests == []


def test_a_redelivery_waits_for_a_try_under_way(settings, receiver, cancel, committed, ws, operator, job):
    from reportdesk.errors import InvalidTransition

    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    register(ws, operator, receiver, events=["job.canceled"])
    receiver.answer(503, 502)
    cancel(job)
    tasks.deliveries_due()
    delivery = EndpointDelivery.objects.get()
    assert delivery.status == "failed" and delivery.claimed_until is None  # a finished try lets go
    # a worker claims it for a try (as delivery_attempt does), and an operator presses Redeliver
    EndpointDelivery.objects.filter(pk=delivery.pk).update(status="pending", claimed_until=timezone.now() + dt.timedelta(seconds=70))

    with pytest.raises(InvalidTransition, match="under way"):
        services.delivery_redeliver(delivery=delivery, actor=operator)

    assert len(receiver.requests) == 2  # nothing sent beside the try
    EndpointDelivery.objects.filter(pk=delivery.pk).update(status="failed", claimed_until=timezone.now() - dt.timedelta(seconds=1))
    committed(services.delivery_redeliver, delivery=delivery, actor=operator)  # a worker that died: its claim ran out
    assert EndpointDelivery.objects.get(pk=delivery.pk).status == "succeeded"
