"""Creates that never answered: every response the provider may have started is found, kept
or canceled, never left running unseen. Through the real SDK against the loopback fake, the
signed webhook endpoint, and the match task."""

import datetime as dt

import pytest
from django.utils import timezone

from jobs import tasks
from jobs.models import ProviderCall, ReportJob, WebhookDelivery
from jobs.worker import step
from tests.fakes.responses_api import CANCEL, CREATE, Fault, Script, make_webhook_secret, webhook_delivery

from .test_step import actions, advance, step_once, submit

pytestmark = pytest.mark.django_db

WINDOW = 30


@pytest.fixture(autouse=True)
def provider_settings(settings, openai_fake):
    """The match task builds its provider from settings, as in production: the fake."""
    settings.REPORT_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = openai_fake.base_url
    settings.OPENAI_TIMEOUT_SECONDS = 2.0
    settings.CREATE_RECONCILE_SECONDS = WINDOW
    settings.OPENAI_WEBHOOK_SECRET = make_webhook_secret()






def webhook(client, settings, response_id, event_type="response.completed"):
    body, headers = webhook_delivery(response_id, event_type, secret=settings.OPENAI_WEBHOOK_SECRET)
    response = client.post("/webhooks/openai/", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    return response.json()["status"]


def window_passes(job):
    """Everything recorded so far happened a window ago."""
    earlier = timezone.now() - dt.timedelta(seconds=WINDOW + 1)
    ProviderCall.objects.filter(job=job).update(created_at=earlier)
    WebhookDelivery.objects.update(received_at=earlier)


def timed_out_create(workspace, requester, openai_fake, openai_provider, script):
    """The fake starts a response, then the create times out before its answer arrives."""
    openai_fake.script_next(script)
    openai_fake.inject(CREATE, Fault.delay(3.0))
    job = step_once(submit(workspace, requester), openai_provider)
    (first,) = openai_fake.responses
    assert ProviderCall.objects.get(job=job).status == "unconfirmed"
    return job, first


def test_a_webhook_within_the_window_adopts_the_response_and_nothing_is_created_twice(
    client, settings, workspace, requester, openai_fake, openai_provider
):
    job, first = timed_out_create(workspace, requester, openai_fake, openai_provider, Script(statuses=("in_progress", "completed")))
    openai_fake.set_status(first, "completed")

    assert webhook(client, settings, first) == "to_match"
    assert tasks.match_response(first) == "adopted"

    job = advance(job, openai_provider, times=2)  # preparing → running on the adopted response; then stored
    assert job.status == "needs_review"
    assert openai_fake.count(CREATE) == 1 and openai_fake.count(CANCEL) == 0
    call = ProviderCall.objects.get(job=job)
    assert (call.provider_response_id, call.status, call.orphan) == (first, "completed", False)
    assert "provider_call_reconciled" in actions(job)
    assert not WebhookDelivery.objects.filter(needs_match=True).exists()


def test_a_timed_out_create_ends_with_exactly_one_live_response_and_the_other_canceled(
    client, settings, workspace, requester, openai_fake, openai_provider
):
    """The timed-out response finishes after the window, while the job follows the second
    create: the finished one is kept (the same request, already paid for), the second is
    canceled at the provider, and the job page shows both."""
    job, first = timed_out_create(workspace, requester, openai_fake, openai_provider, Script.running())
    step_once(job, openai_provider)  # within the window: no second create
    assert openai_fake.count(CREATE) == 1

    window_passes(job)
    openai_fake.script_next(Script.running())
    job = advance(job, openai_provider)
    second = [r for r in openai_fake.responses if r != first][0]
    assert job.status == "running" and job.provider_response_id == second
    assert list(ProviderCall.objects.filter(job=job).values_list("status", flat=True)) == ["lost", "queued"]

    openai_fake.set_status(first, "completed")
    assert webhook(client, settings, first) == "to_match"
    assert tasks.match_response(first) == "kept"
    step.response_cancel(response_id=second, provider=openai_provider)  # the cancel task the match enqueued

    job = advance(job, openai_provider)
    assert job.status == "needs_review"
    assert openai_fake.count(CREATE) == 2
    bodies = {rid: openai_fake.body_of(rid)["status"] for rid in openai_fake.responses}
    assert bodies == {first: "completed", second: "cancelled"}
    calls = {c.provider_response_id: c for c in ProviderCall.objects.filter(job=job)}
    assert (calls[first].orphan, calls[first].status) == (False, "completed")
    assert (calls[second].orphan, calls[second].status) == (True, "cancelled")
    assert "provider_orphan_found" in actions(job)
    assert not ProviderCall.objects.filter(job=job, orphan=False).live().exists()


def test_an_orphan_still_running_is_canceled_and_the_job_keeps_its_own(
    client, settings, workspace, requester, openai_fake, openai_provider
):
    job, first = timed_out_create(workspace, requester, openai_fake, openai_provider, Script.running())
    window_passes(job)
    job = advance(job, openai_provider)
    second = job.provider_response_id

    assert webhook(client, settings, first, "response.incomplete") == "to_match"  # order is not guaranteed
    assert tasks.match_response(first) == "orphan"
    step.response_cancel(response_id=first, provider=openai_provider)

    assert openai_fake.body_of(first)["status"] == "cancelled"
    orphan = ProviderCall.objects.get(provider_response_id=first)
    assert orphan.orphan and orphan.status == "cancelled"
    job.refresh_from_db()
    assert job.provider_response_id == second and job.status == "running"


def test_an_orphan_that_already_ended_is_recorded_with_its_cost(
    client, settings, workspace, requester, openai_fake, openai_provider
):
    job, first = timed_out_create(
        workspace, requester, openai_fake, openai_provider, Script(statuses=("completed",), input_tokens=1000, output_tokens=500)
    )
    window_passes(job)
    openai_fake.script_next(Script(statuses=("completed",)))
    job = advance(job, openai_provider, times=2)  # a second create, which completes: the draft
    assert job.status == "needs_review"
    cost_before = job.cost_usd

    assert webhook(client, settings, first) == "to_match"
    assert tasks.match_response(first) == "orphan"
    orphan = ProviderCall.objects.get(provider_response_id=first)
    assert orphan.orphan and orphan.status == "completed" and orphan.input_tokens == 1000
    job.refresh_from_db()
    assert job.cost_usd > cost_before and job.status == "needs_review"
    assert openai_fake.count(CANCEL) == 0  # nothing left to cancel


def test_deliveries_no_task_could_match_are_looked_at_again_when_the_window_ends(
    client, settings, workspace, requester, openai_fake, openai_provider
):
    """The broker was down when the webhook came: the worker matches it before giving up."""
    job, first = timed_out_create(workspace, requester, openai_fake, openai_provider, Script(statuses=("in_progress",)))
    assert webhook(client, settings, first, "response.completed") == "to_match"  # the match task never runs
    window_passes(job)

    job = advance(job, openai_provider, times=2)  # matched and adopted; then followed
    assert openai_fake.count(CREATE) == 1
    assert job.status == "running" and job.provider_response_id == first


def test_a_webhook_for_someone_elses_response_is_not_matched(client, settings, workspace, requester, openai_fake, openai_provider):
    from openai import OpenAI

    foreign = OpenAI(api_key="sk-test", base_url=openai_fake.base_url).responses.create(
        model="gpt-5.2", input="hello", background=True, store=True, metadata={"job_id": "nobody"}
    )
    assert webhook(client, settings, foreign.id) == "to_match"
    assert tasks.match_response(foreign.id) == "not_ours"
    assert not WebhookDelivery.objects.filter(needs_match=True).exists()


def test_a_worker_that_answers_after_its_call_was_given_up_cancels_its_duplicate(workspace, requester, openai_fake, openai_provider):
    """Its lease lapsed mid-create and another worker gave the call up as lost: the late
    answer is recorded as an orphan and canceled, never followed."""
    from jobs.providers.openai_provider import OpenAIProvider

    class GivenUpMeanwhile(OpenAIProvider):
        def create(self, request):
            state = super().create(request)
            ProviderCall.objects.filter(job__public_id=request.job_id).update(status="lost")
            return state

    openai_fake.script_next(Script.running())
    job = step_once(submit(workspace, requester), GivenUpMeanwhile(api_key="sk-test", base_url=openai_fake.base_url, timeout=2.0))
    (late,) = openai_fake.responses
    assert openai_fake.body_of(late)["status"] == "cancelled"
    duplicate = ProviderCall.objects.get(provider_response_id=late)
    assert duplicate.orphan and duplicate.status == "cancelled"
    assert job.status == "preparing" and "provider_orphan_found" in actions(job)
    assert ReportJob.objects.get(pk=job.pk).provider_response_id == ""


def test_a_create_that_timed_out_after_the_window_still_waits_a_whole_window_from_then(workspace, requester, openai_fake, openai_provider, settings):
    """The create's own timeout can be longer than the window: counted from the call's start,
    the window would be over when the worker gives up, and the next step would create again
    at once — a second billed response if the first did start."""
    settings.CREATE_RECONCILE_SECONDS = 1.0
    openai_fake.inject(CREATE, Fault.delay(3.0))  # past the provider's 2 s timeout
    job = submit(workspace, requester)
    step.job_advance(job_id=job.pk, provider=openai_provider)

    job.refresh_from_db()
    assert ProviderCall.objects.get(job=job).status == "unconfirmed"
    assert (job.next_check_at - timezone.now()).total_seconds() > 0.5  # a window from the give-up, not due at once


def test_no_counter_of_the_metrics_goes_down_when_a_lost_create_turns_up(client, settings, workspace, requester, openai_fake, openai_provider):
    from tests.ops.test_prometheus import TOKEN, scrape

    settings.METRICS_TOKEN = TOKEN
    job, first = timed_out_create(
        workspace, requester, openai_fake, openai_provider, Script(statuses=("completed",), input_tokens=1000, output_tokens=500)
    )
    window_passes(job)
    openai_fake.script_next(Script(statuses=("completed",)))
    advance(job, openai_provider, times=2)  # given up as lost; a second create writes the draft
    before = scrape(client)
    assert before[("reportdesk_provider_calls_lost_total", frozenset())] == 1

    assert webhook(client, settings, first) == "to_match"
    assert tasks.match_response(first) == "orphan"  # the lost create's response turns up after all
    after = scrape(client)

    went_down = {key: v for key, v in before.items() if key[0].endswith("_total") and after.get(key, 0.0) < v}
    assert went_down == {}
