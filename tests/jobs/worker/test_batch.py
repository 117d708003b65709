"""A batch of due jobs advanced by one task: polls in flight together through the real
`openai` SDK against the loopback fake, each job then stepped under its own lease."""

import datetime as dt
import gc
import time

import pytest
from django.utils import timezone

from jobs import tasks
from jobs.models import JobEvent, ProviderCall, ReportJob
from jobs.providers import get_provider
from jobs.worker import batch, dispatcher, step
from tests.fakes.responses_api import CREATE, RETRIEVE, Fault, Script

from .test_step import submit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _steps_on_the_task_thread(settings, request):
    """The steps run on the test's own connection (its transaction), except in the tests
    marked transactional, which use the step threads as a worker does."""
    if "transactional_db" not in request.fixturenames:
        settings.POLL_DB_THREADS = 0
    yield
    batch.pools_shutdown()
    gc.collect()  # the step threads' connections go with them


def _running_jobs(workspace, requester, provider, count):
    """`count` jobs whose response was created at the fake, all due now."""
    jobs = []
    for n in range(count):
        job = submit(workspace, requester, topic=f"Battery recycling, case {n}")
        step.job_advance(job_id=job.pk, provider=provider)
        jobs.append(job)
    ReportJob.objects.update(next_check_at=timezone.now())
    return jobs


def _claim(count):
    token, ids = dispatcher.jobs_claim_due(limit=count)
    assert len(ids) == count
    return token, ids


@pytest.mark.parametrize("db_threads", [0, 4])
def test_a_batch_keeps_its_polls_in_flight_together(workspace, requester, openai_fake, openai_provider, db_threads, settings, transactional_db):
    openai_fake.default_script = Script.running()
    jobs = _running_jobs(workspace, requester, openai_provider, 8)
    token, ids = _claim(8)
    openai_fake.latency = 0.5
    settings.POLL_DB_THREADS = db_threads

    started = time.monotonic()
    failed = batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider)
    elapsed = time.monotonic() - started

    assert failed == []
    assert openai_fake.count(RETRIEVE) == 8
    assert elapsed < 8 * 0.5 / 2  # one at a time would take 4 s
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "running" and job.last_checked_at is not None
        assert job.next_check_at > timezone.now() and job.lease_token == ""  # scheduled, lease given back
    assert set(ProviderCall.objects.values_list("polls", flat=True)) == {1}


def test_each_job_of_a_batch_acts_on_its_own_answer(workspace, requester, openai_fake, openai_provider, transactional_db):
    openai_fake.script_next(Script(statuses=("queued", "completed")))
    openai_fake.script_next(Script(statuses=("queued", "failed"), error={"code": "invalid_prompt", "message": "Bad prompt."}))
    openai_fake.script_next(Script.running())
    done, broken, running = _running_jobs(workspace, requester, openai_provider, 3)
    token, ids = _claim(3)

    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    for job in (done, broken, running):
        job.refresh_from_db()
    assert done.status == "needs_review" and done.artifacts.count() == 6
    assert broken.status == "failed"
    assert running.status == "running"
    assert openai_fake.count(RETRIEVE) == 3 and openai_fake.count(CREATE) == 3


def test_a_transient_poll_error_only_reschedules_its_own_job(workspace, requester, openai_fake, openai_provider):
    openai_fake.default_script = Script.running()
    jobs = _running_jobs(workspace, requester, openai_provider, 3)
    token, ids = _claim(3)
    openai_fake.inject(RETRIEVE, Fault.server_error(), times=1)

    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    assert sorted(bool(m) for m in ProviderCall.objects.values_list("error_message", flat=True)) == [False, False, True]
    for job in jobs:
        job.refresh_from_db()
        assert job.status == "running" and job.next_check_at > timezone.now()


def test_jobs_that_are_not_polls_are_stepped_as_usual(workspace, requester, openai_fake, openai_provider):
    """A queued job in a batch is prepared and started; nothing is fetched ahead for it."""
    openai_fake.default_script = Script.running()
    job = submit(workspace, requester)
    token, ids = _claim(1)

    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    job.refresh_from_db()
    assert job.status == "running"
    assert openai_fake.count(CREATE) == 1 and openai_fake.count(RETRIEVE) == 0


def test_a_job_taken_over_by_another_worker_is_not_polled(workspace, requester, openai_fake, openai_provider):
    openai_fake.default_script = Script.running()
    [job] = _running_jobs(workspace, requester, openai_provider, 1)
    token, ids = _claim(1)
    ReportJob.objects.filter(pk=job.pk).update(lease_token="someone-else")

    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    assert openai_fake.count(RETRIEVE) == 0
    job.refresh_from_db()
    assert job.lease_token == "someone-else"


def test_the_task_runs_the_batch_and_reports_a_failed_step(workspace, requester, monkeypatch):
    """Through the django-q2 entry point, with the local provider (polled inside each step):
    a step that breaks is recorded on its job, the others go on, and the task fails."""
    good, bad = submit(workspace, requester, topic="Good"), submit(workspace, requester, topic="Bad")
    token, ids = _claim(2)
    real_prepare = step.job_prepare

    def prepare(*, job):
        if job.pk == bad.pk:
            raise RuntimeError("disk full")
        return real_prepare(job=job)

    monkeypatch.setattr(step, "job_prepare", prepare)
    with pytest.raises(RuntimeError, match=str(bad.pk)):
        tasks.advance_batch(ids, token)

    good.refresh_from_db()
    assert good.status == "running"
    assert JobEvent.objects.filter(job=bad, action="worker_error").exists()


class TestProviderReuse:
    def test_one_provider_per_configuration_is_reused(self, settings):
        settings.REPORT_PROVIDER, settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "openai", "sk-one", "http://127.0.0.1:9/v1"
        first = get_provider()
        assert get_provider() is first
        settings.OPENAI_API_KEY = "sk-two"  # a changed setting gets its own client
        second = get_provider()
        assert second is not first and get_provider() is second
        assert second._client.api_key == "sk-two"

    def test_the_local_provider_follows_its_settings(self, settings):
        settings.REPORT_PROVIDER, settings.LOCAL_PROVIDER_SECONDS = "local", 3.0
        assert get_provider() is get_provider() and get_provider().seconds == 3.0
        settings.LOCAL_PROVIDER_SECONDS = 4.0
        assert get_provider().seconds == 4.0


@pytest.mark.parametrize("webhook_comes", [True, False])
def test_a_webhook_that_comes_while_the_poll_is_in_flight_is_not_lost(workspace, requester, openai_fake, openai_provider, settings, transactional_db, webhook_comes):
    """The response finishes and its webhook arrives while our retrieve (made a moment
    earlier, answering in_progress) is in flight: the step asks again at once and stores the
    draft, rather than waiting for the cadence's next point."""
    import threading

    from jobs.webhooks import webhook_receive
    from tests.fakes.responses_api import make_webhook_secret, webhook_delivery

    settings.OPENAI_WEBHOOK_SECRET = make_webhook_secret()
    # queued at the create, in_progress at the first retrieve, completed from the second on
    openai_fake.default_script = Script()
    [job] = _running_jobs(workspace, requester, openai_provider, 1)
    token, ids = _claim(1)
    openai_fake.latency = 0.6
    job.refresh_from_db()
    payload, headers = webhook_delivery(job.provider_response_id, "response.completed", secret=settings.OPENAI_WEBHOOK_SECRET)
    outcome = []
    webhook = threading.Timer(0.3, lambda: outcome.append(webhook_receive(payload=payload, headers=headers)))
    if webhook_comes:
        webhook.start()

    batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider)

    job.refresh_from_db()
    if webhook_comes:
        webhook.join()
        assert outcome == ["woken"]
        assert job.status == "needs_review" and openai_fake.count(RETRIEVE) == 2
    else:  # the cadence's next point, a few seconds on
        assert job.status == "running"
        assert job.next_check_at > timezone.now() + dt.timedelta(seconds=3)


def test_a_job_held_while_its_poll_is_in_flight_is_not_asked_again(workspace, requester, openai_fake, openai_provider, settings, transactional_db):
    """Only a webhook makes a step ask again at once: a hold that came meanwhile is kept."""
    import threading

    from jobs.breaker import job_hold

    openai_fake.default_script = Script.running()
    [job] = _running_jobs(workspace, requester, openai_provider, 1)
    token, ids = _claim(1)
    openai_fake.latency = 0.6
    until = timezone.now() + dt.timedelta(minutes=5)
    hold = threading.Timer(0.3, lambda: job_hold(job_id=job.pk, until=until))
    hold.start()
    retrieves = openai_fake.count(RETRIEVE)

    batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider)

    hold.join()
    job.refresh_from_db()
    assert openai_fake.count(RETRIEVE) == retrieves + 1
    assert job.status == "running" and job.next_check_at == until


def test_a_research_job_is_asked_for_the_response_its_step_reads(openai_fake, openai_provider):
    """Multi-step research runs questions side by side: the batch asks ahead for the one the
    step looks at (here the one whose end the provider announced), not the latest, so the
    step makes no retrieve of its own."""
    from jobs import services

    from .test_research import _questions_running

    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    openai_fake.set_status(second.provider_response_id, "completed")
    assert services.job_wake(call=second, details={"type": "response.completed"})
    token, ids = _claim(1)
    assert batch.responses_to_poll(job_ids=ids, lease_token=token) == {job.pk: second.provider_response_id}
    retrieves = openai_fake.count(RETRIEVE)

    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    assert openai_fake.count(RETRIEVE) == retrieves + 1
    second.refresh_from_db()
    assert second.status == "completed"


def test_a_research_job_is_asked_ahead_when_its_latest_question_has_ended(openai_fake, openai_provider):
    """The last question ended first: the others still run, and the batch asks ahead for the
    one due first."""
    from jobs import services

    from .test_research import _questions_running

    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    openai_fake.set_status(latest.provider_response_id, "completed")
    assert services.job_wake(call=latest, details={"type": "response.completed"})
    step.job_advance(job_id=job.pk, provider=openai_provider)  # reads the latest: its notes
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    token, ids = _claim(1)

    assert batch.responses_to_poll(job_ids=ids, lease_token=token) == {job.pk: first.provider_response_id}


def test_nothing_is_asked_ahead_for_a_research_step_that_retries_first(settings, openai_fake, openai_provider):
    """A question that failed and whose retry wait is over is created again by the step, which
    reads nothing: a retrieve made ahead would be thrown away."""
    from .test_research import _second_fails_and_waits

    job, _ = _second_fails_and_waits(settings, openai_fake, openai_provider)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    token, ids = _claim(1)
    retrieves = openai_fake.count(RETRIEVE)

    assert batch.responses_to_poll(job_ids=ids, lease_token=token) == {}
    assert batch.batch_advance(job_ids=ids, lease_token=token, provider=openai_provider) == []

    assert ProviderCall.objects.filter(job=job, step="research-2").count() == 2
    assert openai_fake.count(RETRIEVE) == retrieves


def test_an_answer_not_asked_ahead_is_not_dated_by_the_batch(workspace, requester, openai_fake, openai_provider):
    """A step that reads another response than the one asked ahead asks the provider itself,
    and that answer is dated by its own asking, not the batch's (which a wake could postdate)."""
    openai_fake.default_script = Script.running()
    [one, other] = _running_jobs(workspace, requester, openai_provider, 2)
    one.refresh_from_db()
    other.refresh_from_db()
    asked_at = timezone.now() - dt.timedelta(minutes=5)
    prefetched = batch.PrefetchedProvider(openai_provider, {one.provider_response_id: openai_provider.retrieve(one.provider_response_id)}, asked_at=asked_at)

    prefetched.retrieve(one.provider_response_id)
    assert prefetched.asked_at == asked_at
    prefetched.retrieve(other.provider_response_id)  # not asked ahead
    assert prefetched.asked_at is None


def test_an_end_announced_while_the_batch_asked_stands_when_the_answer_is_an_error(workspace, requester, openai_fake, openai_provider):
    """The batch asks ahead; the response's end is announced while it asks; the answer is a
    transient error. The job stays due for the end announced, not a minute on."""
    from jobs import services
    from jobs.providers.base import ProviderError

    openai_fake.default_script = Script.running()
    [job] = _running_jobs(workspace, requester, openai_provider, 1)
    job.refresh_from_db()
    asked_at = timezone.now()
    assert services.job_wake(call=ProviderCall.objects.get(job=job), details={"type": "response.completed"})
    error = ProviderError("The provider is unavailable.", transient=True, code="server_error")
    prefetched = batch.PrefetchedProvider(openai_provider, {job.provider_response_id: error}, asked_at=asked_at)

    step.job_advance(job_id=job.pk, provider=prefetched)

    job.refresh_from_db()
    assert job.next_check_at <= timezone.now()
