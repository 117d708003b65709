"""A young response followed through its own event stream: the job is woken the moment the
response ends, with no webhook and no poll every few seconds; and whatever goes wrong with a
stream, the checks on the grid still find the end. Real `openai` SDK, loopback fake, the
watch's own threads (so the database is shared: transactional tests)."""

import datetime as dt
import threading

import pytest
from django.utils import timezone

from jobs.models import EventAction, JobEvent, JobStatus, ProviderCall, ReportJob
from jobs.providers.openai_provider import OpenAIProvider
from jobs.worker import step, stream_watch
from tests.fakes.responses_api import RETRIEVE, Fault
from tests.workers import wait_for

from .test_step import submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider(openai_fake):
    return OpenAIProvider(api_key="sk-test", base_url=openai_fake.base_url, timeout=5.0, stream=True)


@pytest.fixture
def watching(settings):
    """This process follows streams, as a worker process does."""
    settings.POLL_FIRST_SECONDS, settings.POLL_STREAMED_SECONDS, settings.POLL_JITTER = 6.7, 20, 0
    stream_watch.stream_watch_enable()
    yield
    stream_watch.stream_watch_stop()


def _start(workspace, requester, provider, topic="Battery recycling capacity"):
    job = submit(workspace, requester, topic=topic)
    step.job_advance(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    return job, ProviderCall.objects.get(job=job)


def _streams(fake):
    return [r for r in fake.requests_to(RETRIEVE) if "stream=true" in r.path]


def _woken(job):
    return ReportJob.objects.filter(pk=job.pk, next_check_at__lte=timezone.now()).exists()


def _seconds_to_check(job) -> float:
    job.refresh_from_db()
    return (job.next_check_at - timezone.now()).total_seconds()


def test_a_response_that_ends_in_its_first_minute_wakes_its_job_at_once(workspace, requester, openai_fake, provider, watching):
    job, call = _start(workspace, requester, provider)
    assert call.watched
    assert 15 < _seconds_to_check(job) <= 20  # the first check is only a safety net
    wait_for(lambda: openai_fake.open_streams == 1, timeout=10, message="the stream followed")

    openai_fake.set_status(call.provider_response_id, "completed")

    wait_for(lambda: _woken(job), timeout=10, message="the job woken by its stream")
    notified = JobEvent.objects.get(job=job, action=EventAction.PROVIDER_NOTIFIED)
    assert notified.actor_kind == "worker"
    assert notified.details == {"type": "response.completed", "response_id": call.provider_response_id, "via": "stream"}
    step.job_advance(job_id=job.pk, provider=provider)
    job.refresh_from_db()
    assert job.status == JobStatus.NEEDS_REVIEW
    # One stream and one poll: the poll read the result the stream announced.
    assert len(_streams(openai_fake)) == 1 and openai_fake.responses[call.provider_response_id].retrieves == 1


def test_a_stream_cut_short_is_followed_again_from_its_last_event(workspace, requester, openai_fake, provider, watching):
    openai_fake.inject(RETRIEVE, Fault.cut(after_events=1))
    job, call = _start(workspace, requester, provider)

    wait_for(lambda: len(_streams(openai_fake)) == 2 and openai_fake.open_streams == 1, timeout=10, message="a second stream")
    openai_fake.set_status(call.provider_response_id, "completed")

    wait_for(lambda: _woken(job), timeout=10, message="the job woken by its second stream")
    first, second = _streams(openai_fake)
    assert "starting_after=0" in first.path and "starting_after=1" in second.path  # from the last event read


def test_the_end_of_a_response_the_job_no_longer_follows_wakes_nothing(workspace, requester, openai_fake, provider, watching):
    job, call = _start(workspace, requester, provider)
    wait_for(lambda: openai_fake.open_streams == 1, timeout=10, message="the stream followed")
    ProviderCall.objects.filter(pk=call.pk).update(status="error")  # given up: a retry is due later
    later = timezone.now() + dt.timedelta(minutes=5)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=later)

    openai_fake.set_status(call.provider_response_id, "completed")

    watch = stream_watch._watch_for(provider)
    wait_for(lambda: watch.following == 0, timeout=10, message="the stream followed to its end")  # after its wake, if any
    job.refresh_from_db()
    assert job.next_check_at == later
    assert not JobEvent.objects.filter(job=job, action=EventAction.PROVIDER_NOTIFIED).exists()


def test_a_full_watch_leaves_the_next_response_to_the_grid(workspace, requester, openai_fake, provider, watching, settings):
    settings.STREAM_WATCH_LIMIT = 1
    _, followed = _start(workspace, requester, provider)
    job, call = _start(workspace, requester, provider, topic="Grid storage")

    assert followed.watched and not call.watched
    assert 4 < _seconds_to_check(job) <= 6.7
    wait_for(lambda: openai_fake.open_streams == 1, timeout=10, message="the first stream")
    assert len(_streams(openai_fake)) == 1


def test_a_process_that_is_not_a_worker_follows_no_stream(workspace, requester, openai_fake, provider, settings):
    settings.POLL_FIRST_SECONDS, settings.POLL_JITTER = 6.7, 0
    job, call = _start(workspace, requester, provider)
    assert not call.watched and 4 < _seconds_to_check(job) <= 6.7
    assert _streams(openai_fake) == []


def test_a_watch_window_over_stops_following(workspace, requester, openai_fake, provider, watching, settings):
    settings.POLL_FAST_SECONDS = 1.0
    _start(workspace, requester, provider)
    wait_for(lambda: openai_fake.open_streams == 1, timeout=10, message="the stream followed")
    wait_for(lambda: openai_fake.open_streams == 0, timeout=10, message="the stream closed after the window")
    assert len(_streams(openai_fake)) == 1


def test_a_stream_refused_for_good_hands_the_response_back_to_the_grid(workspace, requester, openai_fake, provider, watching):
    openai_fake.inject(RETRIEVE, Fault.http(404, "Response not found.", code="not_found"))
    job, call = _start(workspace, requester, provider)
    assert call.watched

    wait_for(lambda: not ProviderCall.objects.get(pk=call.pk).watched, timeout=10, message="the call no longer watched")
    assert _seconds_to_check(job) <= 6.7  # the grid's first point, not the stream's safety net
    assert len(_streams(openai_fake)) == 1


def test_a_watch_that_stops_hands_the_streams_it_follows_back_to_the_grid(workspace, requester, openai_fake, provider, watching):
    """A worker process that exits in order (recycled, or stopped) does not leave its young
    responses to the safety net's 20 s checks: they go back to the grid at once."""
    job, call = _start(workspace, requester, provider)
    other, ended = _start(workspace, requester, provider, topic="Grid storage")
    wait_for(lambda: openai_fake.open_streams == 2, timeout=10, message="both streams followed")
    openai_fake.set_status(ended.provider_response_id, "completed")
    wait_for(lambda: _woken(other), timeout=10, message="the ended one woken by its stream")

    stream_watch.stream_watch_stop()

    call.refresh_from_db()
    assert not call.watched
    assert _seconds_to_check(job) <= 6.7  # the grid's first point, not the stream's safety net
    wait_for(lambda: openai_fake.open_streams == 0, timeout=10, message="the stream closed")
    # The stream that had ended is not touched: its job stays due now.
    assert ProviderCall.objects.get(pk=ended.pk).watched and _woken(other)


def _watched_elsewhere(workspace, requester, provider, settings):
    """A running job whose response counts as followed by a stream (its next check the safety
    net's, 20 s away), for a watch of the test's own to take on."""
    settings.POLL_FIRST_SECONDS, settings.POLL_STREAMED_SECONDS, settings.POLL_JITTER = 6.7, 20, 0
    job, call = _start(workspace, requester, provider)
    ProviderCall.objects.filter(pk=call.pk).update(watched=True)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() + dt.timedelta(seconds=20))
    return job, call


def _stop_while_busy(watch, meanwhile) -> None:
    """Hold the watch's loop busy, do `meanwhile` (whatever it queues on the loop waits), stop
    the watch, and only then let the loop go on: the order a race between the two could take."""
    held = threading.Event()
    watch._loop.call_soon_threadsafe(held.wait, 10)
    meanwhile()
    stopping = threading.Thread(target=watch.stop)
    stopping.start()
    wait_for(lambda: watch._closed, timeout=5, message="the watch stopping")
    held.set()
    stopping.join(10)
    assert not stopping.is_alive()


def test_a_stream_accepted_just_before_the_watch_stops_is_handed_back(workspace, requester, openai_fake, provider, settings):
    """follow() accepted the response, and the watch stopped before its loop got to start
    following it: the response still goes back to the grid."""
    job, call = _watched_elsewhere(workspace, requester, provider, settings)
    watch = stream_watch.StreamWatch(provider, limit=5, window=60)

    def follow():
        assert watch.follow(response_id=call.provider_response_id, after=0, seconds=60)

    _stop_while_busy(watch, follow)

    assert not ProviderCall.objects.get(pk=call.pk).watched
    assert _seconds_to_check(job) <= 6.7


class _GatedStreams:
    """A stream follower whose one stream is refused for good when `gate` opens."""

    def __init__(self):
        self.gate = None

    async def events(self, response_id, after):
        import asyncio

        from jobs.providers.base import ProviderError

        self.gate = asyncio.Event()
        await self.gate.wait()
        raise ProviderError("Response not found.", transient=False, code="not_found")
        yield  # an async generator

    async def aclose(self):
        pass


class _GatedProvider:
    streams = True

    def __init__(self):
        self.follower = _GatedStreams()

    def stream_follower(self, *, timeout):
        return self.follower


def test_a_stream_given_up_while_the_watch_stops_is_still_handed_back(workspace, requester, openai_fake, provider, settings):
    """The stream is refused for good just after stop() began: neither the stream's own
    hand-back (the watch is closing) nor stop()'s may miss it."""
    job, call = _watched_elsewhere(workspace, requester, provider, settings)
    gated = _GatedProvider()
    watch = stream_watch.StreamWatch(gated, limit=5, window=60)
    assert watch.follow(response_id=call.provider_response_id, after=0, seconds=60)
    wait_for(lambda: gated.follower.gate is not None, timeout=5, message="the stream followed")

    # The refusal comes once the loop runs again, after the stop began.
    _stop_while_busy(watch, lambda: watch._loop.call_soon_threadsafe(gated.follower.gate.set))

    assert not ProviderCall.objects.get(pk=call.pk).watched
    assert _seconds_to_check(job) <= 6.7


def test_a_watch_that_stops_closes_the_database_connection_of_its_wake_thread(workspace, requester, openai_fake, provider, watching):
    """The wake thread opens a connection of its own to wake jobs; the watch's stop closes
    it (a long-lived process would otherwise keep it until the thread is collected)."""
    from django.db.backends.signals import connection_created

    opened = []

    def note(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("stream-wake"):
            opened.append(connection)

    connection_created.connect(note)
    try:
        job, call = _start(workspace, requester, provider)
        wait_for(lambda: openai_fake.open_streams == 1, timeout=10, message="the stream followed")
        openai_fake.set_status(call.provider_response_id, "completed")
        wait_for(lambda: _woken(job), timeout=10, message="the job woken by its stream")
        stream_watch.stream_watch_stop()
    finally:
        connection_created.disconnect(note)
    assert opened and all(wrapper.connection is None for wrapper in opened)
