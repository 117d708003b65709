"""POST /webhooks/openai/: signed provider events wake the job; bad ones are refused."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from jobs.models import JobEvent, ReportJob, WebhookDelivery
from tests.factories import ProviderCallFactory, ReportJobFactory
from tests.fakes.responses_api import make_webhook_secret, sign_webhook, webhook_delivery
from tests.oncommit import work_callbacks

pytestmark = pytest.mark.django_db
URL = "/webhooks/openai/"


@pytest.fixture
def secret(settings):
    settings.OPENAI_WEBHOOK_SECRET = make_webhook_secret()
    return settings.OPENAI_WEBHOOK_SECRET


@pytest.fixture
def running_call():
    job = ReportJobFactory()
    later = timezone.now() + dt.timedelta(minutes=1)
    ReportJob.objects.filter(pk=job.pk).update(status="running", next_check_at=later, provider_response_id="resp_abc123")
    return ProviderCallFactory(attempt=job.current_attempt, job=job, provider_response_id="resp_abc123")


def post(client, body, headers):
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def test_a_signed_event_wakes_the_job_at_once_and_is_deduplicated(client, secret, running_call, django_capture_on_commit_callbacks):
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert response.status_code == 200 and response.json() == {"status": "woken"}
    assert len(work_callbacks(callbacks)) == 1  # an advance task for the job
    job = running_call.job
    job.refresh_from_db()
    assert job.next_check_at <= timezone.now() and job.status == "running"  # the worker decides, not the webhook
    event = JobEvent.objects.get(job=job)
    assert (event.action, event.actor_kind, event.details["type"]) == ("provider_notified", "webhook", "response.completed")

    again = post(client, body, headers)  # the provider delivers the same event twice
    assert again.json() == {"status": "duplicate"}
    assert JobEvent.objects.filter(job=job).count() == 1 and WebhookDelivery.objects.count() == 1


def test_an_event_for_an_unknown_response_is_kept_to_be_matched_to_a_create(client, secret, django_capture_on_commit_callbacks):
    body, headers = webhook_delivery("resp_nobody", "response.completed", secret=secret)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert response.status_code == 200 and response.json() == {"status": "to_match"}
    assert WebhookDelivery.objects.get().needs_match
    assert len(work_callbacks(callbacks)) == 1  # a match task, enqueued once the delivery is saved


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "missing"])
def test_untrusted_deliveries_are_refused(client, secret, running_call, tamper):
    if tamper == "secret":
        body, headers = webhook_delivery("resp_abc123", "response.completed", secret=make_webhook_secret())
    elif tamper == "stale":
        body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret, timestamp=int(time.time()) - 3600)
    else:
        body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
        if tamper == "body":
            body = body.replace(b"resp_abc123", b"resp_evil99")
        else:
            headers = {k: v for k, v in headers.items() if k != "webhook-signature"}
    response = post(client, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookDelivery.objects.exists() and not JobEvent.objects.exists()


def test_webhooks_without_a_secret_are_not_accepted(client, settings, running_call):
    settings.OPENAI_WEBHOOK_SECRET = ""
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=make_webhook_secret())
    assert post(client, body, headers).status_code == 503


def test_only_post(client, secret):
    assert client.get(URL).status_code == 405


def test_an_event_for_a_response_that_already_failed_does_not_cut_its_retry_wait_short(client, secret, running_call):
    from jobs.models import ProviderCall

    ProviderCall.objects.filter(pk=running_call.pk).update(status="failed")  # its retry is scheduled
    body, headers = webhook_delivery("resp_abc123", "response.failed", secret=secret)
    assert post(client, body, headers).json() == {"status": "ignored"}
    running_call.job.refresh_from_db()
    assert running_call.job.next_check_at > timezone.now()


def test_a_question_running_beside_the_latest_one_wakes_the_job_to_look_at_it(client, secret, running_call):
    """Multi-step research runs questions side by side: the end of any of them wakes the job,
    and marks the response the check is to look at first."""
    from jobs.models import ProviderCall

    ProviderCallFactory(attempt=running_call.attempt, job=running_call.job, provider_response_id="resp_later", step="research-2")
    ReportJob.objects.filter(pk=running_call.job_id).update(provider_response_id="resp_later")
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "woken"}
    running_call.job.refresh_from_db()
    assert running_call.job.next_check_at <= timezone.now()
    assert ProviderCall.objects.get(pk=running_call.pk).notified_at is not None
    assert ProviderCall.objects.get(provider_response_id="resp_later").notified_at is None


@pytest.mark.parametrize("failed", ["failed", "error"])
def test_no_event_cuts_short_the_retry_wait_of_a_question_beside_it(client, secret, running_call, failed):
    """A question whose response failed (or whose create did) waits for its automatic retry;
    the end of another question must not start that retry early."""
    ProviderCallFactory(attempt=running_call.attempt, job=running_call.job, provider_response_id="resp_failed", step="research-2", status=failed)
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "ignored"}
    running_call.job.refresh_from_db()
    assert running_call.job.next_check_at > timezone.now()


def test_a_question_retried_since_its_failure_no_longer_holds_the_others_back(client, secret, running_call):
    ProviderCallFactory(attempt=running_call.attempt, job=running_call.job, provider_response_id="resp_failed", step="research-2", status="failed")
    ProviderCallFactory(attempt=running_call.attempt, job=running_call.job, provider_response_id="resp_retry", step="research-2")
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "woken"}


def test_an_event_for_an_earlier_attempt_or_an_orphan_wakes_nothing(client, secret, running_call):
    from jobs.models import ProviderCall

    ProviderCall.objects.filter(pk=running_call.pk).update(orphan=True)
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "ignored"}
    earlier = ProviderCallFactory(job=running_call.job, provider_response_id="resp_earlier")  # an attempt of its own
    assert earlier.attempt_id != running_call.job.current_attempt_id
    body, headers = webhook_delivery("resp_earlier", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "ignored"}
    running_call.job.refresh_from_db()
    assert running_call.job.next_check_at > timezone.now()


def test_the_same_event_under_a_new_delivery_id_wakes_the_job_once(client, secret, running_call):
    body, headers = webhook_delivery("resp_abc123", "response.completed", secret=secret)
    assert post(client, body, headers).json() == {"status": "woken"}
    # the provider re-sends the event (same `id`) as a new delivery, signed anew
    resent = {**headers, **sign_webhook(payload=body, secret=secret, msg_id="wh_another", timestamp=int(time.time()))}
    assert post(client, body, resent).json() == {"status": "duplicate"}
    assert JobEvent.objects.filter(job=running_call.job, action="provider_notified").count() == 1


def _signed(secret, payload: bytes):
    headers = {"content-type": "application/json"}
    return payload, headers | sign_webhook(payload=payload, secret=secret, msg_id="wh_odd", timestamp=int(time.time()))


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"id": "evt_1", "type": "response.completed", "data": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"id": "evt_1", "type": "response.completed", "data": {"id": "\\ud800"}}',
        b'{"id": "evt_\\udfff", "type": "response.completed", "data": {"id": "resp_1"}}',
        b'{"id": "evt_1", "type": "response.completed", "data": {"id": "resp_\\u0000"}}',
        b'{"id": "evt_1", "type": "response.completed", "data": {"id": "' + b"r" * 300 + b'"}}',
    ],
    ids=["nested-list", "nested-data", "surrogate-response-id", "surrogate-event-id", "nul", "overlong"],
)
def test_a_correctly_signed_but_unreadable_body_is_a_400_not_a_crash(client, secret, payload):
    response = post(client, *_signed(secret, payload))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not WebhookDelivery.objects.exists()
