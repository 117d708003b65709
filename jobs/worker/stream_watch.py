"""Following a young response's own event stream, so that one which ends in its first minute
is stored within a second, without webhooks and without a poll every few seconds.

The worker that created a response as a stream (PROVIDER_STREAM) hands it here. One asyncio
loop per worker process, on a thread of its own, holds the streams, many at once, each an
idle connection, through the response's first POLL_FAST_SECONDS. When a stream announces the
end, the job is woken as a webhook wakes it (services.job_wake): due now, so the dispatcher
hands it to a worker within a tick, which reads the response and stores it.

A stream only says when to look: the result is still read by a retrieve, through the
ordinary step. So a stream that breaks (followed again from its last event, a few times), a
process that dies, or a watch that is full loses nothing: the job's checks go on, every
POLL_STREAMED_SECONDS while a stream is meant to be followed (ProviderCall.watched), then on
the usual grid. A process that exits in order hands the streams it still follows back to the
grid first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import multiprocessing.util
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .. import services
from ..events import WORKER
from ..models import JobStatus, ProviderCall, ReportJob
from ..providers.base import Provider, ProviderError, ResponseState
from ..selectors import attempt_awaits_retry
from .cadence import poll_delay
from .graceful_stop import exit_begun, exit_ended

log = logging.getLogger(__name__)

# A stream cut short (a dropped connection, a proxy's timeout) is followed again from its
# last event this many times, a second or two apart.
RESUMES = 3

_enabled = False
_finalizer_pid: int | None = None
_watch: StreamWatch | None = None
_lock = threading.Lock()


class StreamWatch:
    """The streams one process follows: an event loop on a daemon thread, at most `limit`
    streams at once, and one thread that wakes the jobs (the database is not async here)."""

    def __init__(self, provider: Provider, *, limit: int, window: float):
        self.provider = provider
        self._limit = limit
        self._count = 0
        self._closed = False
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task] = set()
        # The responses this watch has taken on and not yet let go: what is left of them when
        # the watch stops (followed, or accepted and not yet started) goes back to the grid.
        self._live: set[str] = set()
        self._wakes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-wake")
        self._loop = asyncio.new_event_loop()
        # The follower's HTTP pool belongs to the loop that first uses it: built on the loop's thread.
        self._streams = None
        self._window = window
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="stream-watch", daemon=True)
        self._thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._streams = self.provider.stream_follower(timeout=self._window + 30)
        except Exception:
            log.exception("could not start following streams; responses are checked on the grid")
            self._closed = True
        finally:
            ready.set()
        try:
            if not self._closed:
                self._loop.run_forever()
                self._loop.run_until_complete(self._close())
        finally:
            self._loop.close()

    @property
    def following(self) -> int:
        return self._count

    def has_room(self) -> bool:
        return not self._closed and self._count < self._limit

    def follow(self, *, response_id: str, after: int, seconds: float) -> bool:
        """Follow the response's events after number `after` for up to `seconds`; False when
        the watch is full or stopped."""
        with self._lock:
            if self._closed or self._count >= self._limit:
                return False
            self._count += 1
            self._live.add(response_id)
        deadline = time.monotonic() + seconds
        try:
            self._loop.call_soon_threadsafe(self._start, response_id, after, deadline)
        except RuntimeError:  # stopped meanwhile: the loop is closed (the caller hands it back)
            with self._lock:
                self._count -= 1
                self._live.discard(response_id)
            return False
        return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True
        try:
            self._loop.call_soon_threadsafe(self._loop.stop)
        except RuntimeError:
            pass  # the loop is closed already
        self._thread.join(timeout)
        # The streams still followed end with the watch: their responses go back to the grid's
        # checks now, rather than at the safety net's next check.
        with self._lock:
            dropped = sorted(self._live)
        for response_id in dropped:
            self._wakes.submit(_on_wake_thread, _unwatch, response_id)
        self._wakes.submit(_connection_close)
        self._wakes.shutdown(wait=True)

    def _start(self, response_id: str, after: int, deadline: float) -> None:
        if self._closed:  # accepted just before the stop: left in _live, for stop() to hand back
            with self._lock:
                self._count -= 1
            return
        task = self._loop.create_task(self._follow(response_id, after, deadline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _until_end(self, response_id: str, cursor: list[int]) -> str:
        """Read the stream from event cursor[0] on, keeping cursor[0] at the last one read;
        the status it ended with, or "" when it closed without an end."""
        async with contextlib.aclosing(self._streams.events(response_id, after=cursor[0])) as events:
            async for number, status in events:
                cursor[0] = max(cursor[0], number)
                if status:
                    return status
        return ""

    async def _follow(self, response_id: str, after: int, deadline: float) -> None:
        """Follow one stream to its end, or to the end of the window; wake the job at the end.
        A stream given up before the window is over (refused, or cut once too often) hands
        the response back to the grid's checks."""
        cursor, given_up, cancelled = [after], True, False
        try:
            for resume in range(RESUMES + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    given_up = False
                    return
                try:
                    status = await asyncio.wait_for(self._until_end(response_id, cursor), timeout=left)
                except TimeoutError:
                    given_up = False
                    return  # its first minute is over: the checks on the grid go on
                except ProviderError as exc:
                    if not exc.transient:
                        log.info("stream of %s not followed: %s", response_id, exc.message)
                        return
                    status = ""
                if status:
                    given_up = False
                    await self._loop.run_in_executor(self._wakes, _on_wake_thread, _wake, response_id, status)
                    return
                # Closed without an end: cut short, or cancelled. Follow again a little later.
                await asyncio.sleep(min(2.0**resume, max(0.0, deadline - time.monotonic())))
        except asyncio.CancelledError:
            given_up, cancelled = False, True  # the watch stops: stop() hands it back
            raise
        except Exception:
            log.exception("following the stream of %s failed", response_id)
        finally:
            # One decision under the lock, against a stop() in between: either this hands the
            # given-up response back itself, or it stays in _live for stop() to.
            with self._lock:
                self._count -= 1
                hand_back = given_up and not self._closed
                if not cancelled and (not given_up or hand_back):
                    self._live.discard(response_id)
            if hand_back:
                self._wakes.submit(_on_wake_thread, _unwatch, response_id)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._streams.aclose()


def _connection_close() -> None:
    """Close the wake thread's own connection: run on that thread. (`connection.close` named
    on another thread would be that thread's connection, which this one may not touch.)"""
    connection.close()


def _on_wake_thread(action, response_id: str, *args) -> None:
    """Run a database `action` for the response on the wake thread, with that thread's
    connection fresh before and after; a failure is logged (the checks go on regardless)."""
    close_old_connections()
    try:
        action(response_id, *args)
    except Exception:
        log.exception("%s for %s failed", action.__name__, response_id)
    finally:
        close_old_connections()


def _wake(response_id: str, status: str) -> None:
    """The job whose response this is becomes due now."""
    call = ProviderCall.objects.select_related("job").filter(provider_response_id=response_id).first()
    if call is not None:
        services.job_wake(
            call=call, actor=WORKER, details={"type": f"response.{status}", "response_id": response_id, "via": "stream"}
        )


def _unwatch(response_id: str) -> None:
    """A stream given up early, or dropped by a watch that stops: the response goes back to
    the grid."""
    stream_unwatched(response_id=response_id)


def stream_unwatched(*, response_id: str) -> None:
    """The response is not (or no longer) followed by its stream: its first minute's checks
    are the grid's again, the next one no later than the grid's next point."""
    call = ProviderCall.objects.filter(provider_response_id=response_id, watched=True).first()
    if call is None:
        return
    ProviderCall.objects.filter(pk=call.pk).update(watched=False)
    with transaction.atomic():
        # Under the job's lock: a retry wait set meanwhile by a worker is seen.
        job = services.job_lock(call.job_id)
        if job is None or job.status != JobStatus.RUNNING or job.current_attempt_id != call.attempt_id:
            return
        if attempt_awaits_retry(attempt_id=call.attempt_id):
            return  # another step of the research waits for its retry: that wait stands
        age = (timezone.now() - call.created_at).total_seconds()
        sooner = timezone.now() + dt.timedelta(seconds=poll_delay(age=age))
        ReportJob.objects.filter(pk=job.pk, next_check_at__gt=sooner).update(next_check_at=sooner)


def stream_watch_enable() -> None:
    """This process follows the streams of the responses it creates (a worker process). When
    the process exits in order (django-q2 recycling it, or a stop), the streams it still
    follows are handed back to the grid first; only a process killed outright leaves them to
    the safety net's checks."""
    global _enabled, _finalizer_pid
    _enabled = True
    if _finalizer_pid != os.getpid():
        # multiprocessing runs its finalizers when a process's target returns or exits;
        # atexit handlers do not run in a child process.
        multiprocessing.util.Finalize(None, _on_process_exit, exitpriority=10)
        _finalizer_pid = os.getpid()


def _watch_for(provider: Provider) -> StreamWatch | None:
    """This process's watch for the provider, started on first use; None where nothing is followed."""
    global _watch
    provider = getattr(provider, "direct", provider)
    if not _enabled or not getattr(provider, "streams", False):
        return None
    with _lock:
        if _watch is not None and _watch.provider is not provider:
            _watch.stop()  # the settings changed (a test's override): a watch for the new provider
            _watch = None
        if _watch is None:
            _watch = StreamWatch(provider, limit=settings.STREAM_WATCH_LIMIT, window=settings.POLL_FAST_SECONDS)
        return _watch


def stream_followable(*, provider: Provider, state: ResponseState) -> bool:
    """Will this process follow the new response's stream? (The checks of its first minute
    are then only a safety net.)"""
    if state.stream_cursor is None or state.is_terminal:
        return False
    watch = _watch_for(provider)
    return watch is not None and watch.has_room()


def stream_follow(*, provider: Provider, state: ResponseState) -> bool:
    """Follow the new response's stream through its first POLL_FAST_SECONDS. Call it once
    the job records the response: a stream that ended before would wake nothing."""
    if state.stream_cursor is None or state.is_terminal:
        return False
    watch = _watch_for(provider)
    return watch is not None and watch.follow(response_id=state.id, after=state.stream_cursor, seconds=settings.POLL_FAST_SECONDS)


def _on_process_exit() -> None:
    """The worker process exits in order: its streams go back to the grid before it goes, and
    a SIGTERM meanwhile (django-q2's guard, after a task's timeout) does not cut that short."""
    exit_begun()
    try:
        stream_watch_stop()
    finally:
        exit_ended()


def stream_watch_stop() -> None:
    """Stop this process's watch (tests; a worker that stops)."""
    global _watch, _enabled
    with _lock:
        watch, _watch = _watch, None
        _enabled = False
    if watch is not None:
        watch.stop()
