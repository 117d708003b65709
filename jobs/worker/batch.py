"""Advancing a batch of due jobs in one task, with their polls in flight together.

The dispatcher hands a worker a batch of the jobs it leased (one token for the batch). A poll
is mostly waiting on the provider, so the worker first asks the provider about every running
job of the batch at once, from a pool of threads that touch no database (POLL_CONCURRENCY);
then it advances each job with the ordinary step (`step.job_advance`: its own lease, its own
row lock, its own JobEvent) as soon as that job's answer is in, on a few threads with a
database connection each (POLL_DB_THREADS), so the steps' own round trips to the database
overlap too. One worker process thus keeps dozens of retrieves in flight instead of one.

Only the retrieve is done ahead; everything else the step does (a create, a cancel, storing
the result) runs as it always does. A job whose answer was not fetched ahead (not running,
a create due, a provider whose calls touch the database) simply polls inside its step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from ..breaker import breaker_rows
from ..models import CallStatus, JobStatus, ProviderCall
from ..providers import get_provider
from ..providers.base import Provider, ProviderError, ReportRequest, ResponseState
from . import step
from .research import response_due

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_step_thread = threading.local()


def pools_shutdown() -> None:
    """Stop this process's pools; their threads end and with them their database connections
    (a test database can then be dropped). The next batch starts new ones."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True)


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    """One pool of each kind per process, kept between tasks."""
    with _pools_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix=name)
        return _pools[name]


class PrefetchedProvider:
    """The provider, with the answers of retrieves already made: a retrieve of one of these
    ids returns (or raises) what the provider said, once; every other call goes through."""

    def __init__(self, provider: Provider, answers: dict[str, ResponseState | ProviderError], *, asked_at=None):
        self._provider = provider
        self._answers = answers
        self.name = provider.name
        self.polls_concurrently = provider.polls_concurrently
        # When the answers were asked for: a webhook after that makes the job look again soon
        # (step.job_check), since the answer may predate what the webhook announced.
        self.asked_at = asked_at

    def create(self, request: ReportRequest) -> ResponseState:
        return self._provider.create(request)

    def retrieve(self, response_id: str) -> ResponseState:
        answer = self._answers.pop(response_id, None)
        if answer is None:
            self.asked_at = None  # asked now, not when the batch asked
            return self._provider.retrieve(response_id)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def cancel(self, response_id: str) -> ResponseState:
        return self._provider.cancel(response_id)

    @property
    def direct(self) -> Provider:
        """The provider itself, for a step that must ask again rather than use an answer."""
        return self._provider

    def __getattr__(self, name):
        # Everything else the provider offers (delete, probe, ...) is the provider's own.
        return getattr(self._provider, name)


# A step whose latest call is one of these is created again or reconciled, not read.
WAITS_FIRST = (CallStatus.ERROR, CallStatus.FAILED, CallStatus.UNCONFIRMED, CallStatus.PENDING)


def responses_to_poll(*, job_ids: Iterable[int], lease_token: str) -> dict[int, str]:
    """{job id: response id} for the jobs of the batch whose step will be a poll, and of which
    response: running under our lease, a response of the current attempt running, and no step
    of it to be created or reconciled first (a failed create or response, one unanswered).
    Of several running side by side (multi-step research), the one the step reads: the first
    due (research.call_to_follow). One query."""
    calls = (
        ProviderCall.objects.filter(
            job_id__in=list(job_ids), job__status=JobStatus.RUNNING, job__lease_token=lease_token,
            job__current_attempt_id=F("attempt_id"), orphan=False,
        )
        .exclude(status=CallStatus.LOST)
        .order_by("job_id", "id")
        .values_list("job_id", "id", "step", "provider_response_id", "status", "created_at", "last_checked_at", "notified_at", "watched")
    )
    by_job: dict[int, list[tuple]] = {}
    for row in calls:
        by_job.setdefault(row[0], []).append(row[1:])
    polls = {}
    for job_id, rows in by_job.items():
        latest = {step: (response_id, status) for _, step, response_id, status, *_ in rows}
        if any(status in WAITS_FIRST or not response_id for response_id, status in latest.values()):
            continue
        running = [
            (response_due(created_at=created_at, last_checked_at=checked, notified_at=notified, watched=watched)[0], call_id, response_id)
            for call_id, _, response_id, status, created_at, checked, notified, watched in rows
            if response_id and status in (CallStatus.QUEUED, CallStatus.IN_PROGRESS)
        ]
        if running:
            polls[job_id] = min(running)[2]
    return polls


def _retrieve(provider: Provider, response_id: str) -> ResponseState | ProviderError:
    try:
        return provider.retrieve(response_id)
    except ProviderError as exc:
        return exc


def batch_advance(*, job_ids: list[int], lease_token: str, provider: Provider | None = None) -> list[int]:
    """Advance every job of the batch one step, polls made concurrently. Returns the ids of
    the jobs whose step failed (each already recorded on its job and logged)."""
    provider = provider or get_provider()
    # A provider whose calls touch the database (the local one) is polled inside each step,
    # on the task's own thread, like any other step.
    concurrent = getattr(provider, "polls_concurrently", False)
    breakers = breaker_rows()  # once for the batch, not once per step
    # Under a provider hold nothing is asked ahead: each step meets the hold and waits.
    polls = responses_to_poll(job_ids=job_ids, lease_token=lease_token) if concurrent and not breakers.holds() else {}
    asked_at = timezone.now()
    batch_key, task_thread = object(), threading.current_thread()
    failed = []

    def advance(job_id: int, step_provider: Provider) -> None:
        if threading.current_thread() is not task_thread and getattr(_step_thread, "batch", None) is not batch_key:
            # Once per batch on each step thread, as django-q2 does per task on its own: replace
            # a connection that broke or outlived CONN_MAX_AGE.
            close_old_connections()
            _step_thread.batch = batch_key
        try:
            step.job_advance(job_id=job_id, lease_token=lease_token, provider=step_provider, breakers=breakers)
        except Exception:  # recorded on the job by job_advance; the rest of the batch goes on
            failed.append(job_id)

    retrieving = _pool("retrieve", settings.POLL_CONCURRENCY)
    answers: dict[Future, int] = {retrieving.submit(_retrieve, provider, polls[job_id]): job_id for job_id in polls}
    run = _pool("step", settings.POLL_DB_THREADS).submit if concurrent and settings.POLL_DB_THREADS > 0 else _inline
    steps = [run(advance, job_id, provider) for job_id in job_ids if job_id not in polls]
    for answer in as_completed(answers):
        job_id = answers[answer]
        steps.append(run(advance, job_id, PrefetchedProvider(provider, {polls[job_id]: answer.result()}, asked_at=asked_at)))
    wait(steps)
    return failed


def _inline(function, *args) -> Future:
    """Run now, on this thread, answering like a pool's submit."""
    future: Future = Future()
    future.set_result(function(*args))
    return future
