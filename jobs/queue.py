"""The one module that enqueues work for django-q2.

Tasks are named by their dotted path, so nothing of ours is imported here and no module that
enqueues pulls the worker into its import chain. Callers inside a transaction wrap these in
`transaction.on_commit` (jobs.services does) so a task never runs before its data exists.

The follow-up tasks that move jobs on (`advance_job`, `advance_batch`) run by the thousand
and keep their state on the job, so their successes are not saved as django-q2 results
(`save=False`): saving one, with django-q2's pruning to `save_limit`, cost more than the poll
itself. Their failures are still saved.
"""

from __future__ import annotations

import os

from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

_brokers: dict[int, Broker] = {}


def _broker() -> Broker:
    """One broker (one Redis connection pool) per process: django-q2 builds a new one, and
    connects anew, for every task otherwise. Keyed by process, so a forked worker never
    shares its parent's connection."""
    pid = os.getpid()
    broker = _brokers.get(pid)
    if broker is None:
        _brokers.clear()
        broker = _brokers[pid] = get_broker()
    return broker


def enqueue_job_advance(job_id: int, lease_token: str | None = None) -> None:
    """A worker moves the job one step on (jobs.tasks.advance_job)."""
    async_task(
        "jobs.tasks.advance_job", job_id, lease_token, task_name=f"advance job {job_id}", group="advance", save=False,
        broker=_broker(),
    )


def enqueue_batch_advance(job_ids: list[int], lease_token: str) -> None:
    """A worker moves each of the jobs one step on, their polls in flight together
    (jobs.tasks.advance_batch); the dispatcher leased them all with `lease_token`."""
    async_task(
        "jobs.tasks.advance_batch", list(job_ids), lease_token,
        task_name=f"advance {len(job_ids)} jobs from {job_ids[0]}", group="advance", save=False, broker=_broker(),
    )


def enqueue_provider_cancel(response_id: str) -> None:
    """A worker cancels the response at the provider (jobs.tasks.cancel_at_provider)."""
    async_task(
        "jobs.tasks.cancel_at_provider", response_id, task_name=f"cancel {response_id}", group="cancel", broker=_broker()
    )


def enqueue_dispatcher() -> None:
    """A worker becomes the dispatcher, unless one already is (jobs.tasks.tick)."""
    async_task("jobs.tasks.tick", task_name="dispatcher", group="dispatcher", broker=_broker())
