"""Advancing a batch of due jobs in one task, with their polls in flight together.

The dispatcher hands a worker a batch of the jobs it leased (one token for the batch). A poll
is mostly waiting on the provider, so the worker first asks the provider about every running
job of the batch at once, from a small pool of threads that touch no database; then it
advances each job with the ordinary step (`step.job_advance`: its own lease, its own row
lock, its own JobEvent), as soon as that job's answer is in. One worker process thus keeps
dozens of retrieves in flight instead of one.

Only the retrieve is done ahead; everything else the step does (a create, a cancel, storing
the result) runs as it always does. A job whose answer was not fetched ahead (not running,
a create due, a provider whose calls touch the database) simply polls inside its step.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from django.conf import settings
from django.db.models import F

from ..models import CallStatus, JobStatus, ProviderCall
from ..providers import get_provider
from ..providers.base import Provider, ProviderError, ReportRequest, ResponseState
from . import step

log = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _retrieve_pool() -> ThreadPoolExecutor:
    """One pool per process, kept between tasks (its threads only wait on the provider)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.POLL_CONCURRENCY, thread_name_prefix="retrieve")
        return _pool


class PrefetchedProvider:
    """The provider, with the answers of retrieves already made: a retrieve of one of these
    ids returns (or raises) what the provider said, once; every other call goes through."""

    def __init__(self, provider: Provider, answers: dict[str, ResponseState | ProviderError]):
        self._provider = provider
        self._answers = answers
        self.name = provider.name
        self.polls_concurrently = provider.polls_concurrently

    def create(self, request: ReportRequest) -> ResponseState:
        return self._provider.create(request)

    def retrieve(self, response_id: str) -> ResponseState:
        answer = self._answers.pop(response_id, None)
        if answer is None:
            return self._provider.retrieve(response_id)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def cancel(self, response_id: str) -> ResponseState:
        return self._provider.cancel(response_id)


def responses_to_poll(*, job_ids: Iterable[int], lease_token: str) -> dict[int, str]:
    """{job id: response id} for the jobs of the batch whose step will be a poll: running
    under our lease, the latest call of the current attempt started and not yet over. One query."""
    calls = (
        ProviderCall.objects.filter(
            job_id__in=list(job_ids), job__status=JobStatus.RUNNING, job__lease_token=lease_token,
            job__current_attempt_id=F("attempt_id"),
        )
        .exclude(status=CallStatus.LOST)
        .order_by("job_id", "-id")
        .values_list("job_id", "provider_response_id", "status")
    )
    latest: dict[int, str] = {}
    seen: set[int] = set()
    for job_id, response_id, status in calls:
        if job_id in seen:
            continue
        seen.add(job_id)
        if response_id and status in (CallStatus.QUEUED, CallStatus.IN_PROGRESS):
            latest[job_id] = response_id
    return latest


def _retrieve(provider: Provider, response_id: str) -> ResponseState | ProviderError:
    try:
        return provider.retrieve(response_id)
    except ProviderError as exc:
        return exc


def batch_advance(*, job_ids: list[int], lease_token: str, provider: Provider | None = None) -> list[int]:
    """Advance every job of the batch one step, polls made concurrently. Returns the ids of
    the jobs whose step failed (each already recorded on its job and logged)."""
    provider = provider or get_provider()
    polls = responses_to_poll(job_ids=job_ids, lease_token=lease_token) if getattr(provider, "polls_concurrently", False) else {}
    failed: list[int] = []

    def advance(job_id: int, step_provider: Provider) -> None:
        try:
            step.job_advance(job_id=job_id, lease_token=lease_token, provider=step_provider)
        except Exception:  # recorded on the job by job_advance; the rest of the batch goes on
            failed.append(job_id)

    pool = _retrieve_pool()
    futures: dict[Future, int] = {pool.submit(_retrieve, provider, polls[job_id]): job_id for job_id in polls}
    for job_id in job_ids:
        if job_id not in polls:
            advance(job_id, provider)
    for future in as_completed(futures):
        job_id = futures[future]
        advance(job_id, PrefetchedProvider(provider, {polls[job_id]: future.result()}))
    return failed
