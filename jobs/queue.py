"""The one module that enqueues work for django-q2.

Tasks are named by their dotted path, so nothing of ours is imported here and no module that
enqueues pulls the worker into its import chain.

The database is the outbox: whatever a task is for is saved first (a job due now through its
`next_check_at`, a live response of a stopped job, a webhook still to match), and the
dispatcher's loop and sweeps hand out whatever was saved but never enqueued. So a failed
enqueue only delays work: `enqueue_on_commit` runs after the transaction commits and logs a
broker error instead of raising it into a request whose work is already saved.

The follow-up tasks that move jobs on (`advance_job`, `advance_batch`) run by the thousand
and keep their state on the job, so their successes are not saved as django-q2 results
(`save=False`): saving one, with django-q2's pruning to `save_limit`, cost more than the poll
itself. Their failures are still saved.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial

from django.apps import apps
from django.db import transaction
from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

log = logging.getLogger(__name__)
_brokers: dict[tuple, Broker] = {}


def _broker() -> Broker:
    """One broker (one Redis connection pool) per process: django-q2 builds a new one, and
    connects anew, for every task otherwise. Keyed by process, so a forked worker never
    shares its parent's connection, and by where the broker points."""
    key = (os.getpid(), repr(Conf.REDIS), repr(Conf.ORM))
    broker = _brokers.get(key)
    if broker is None:
        _brokers.clear()
        broker = _brokers[key] = get_broker()
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


def enqueue_response_match(response_id: str) -> None:
    """A worker matches a response a webhook named to the create it answers (jobs.tasks.match_response)."""
    async_task("jobs.tasks.match_response", response_id, task_name=f"match {response_id}", group="match", broker=_broker())


def enqueue_dispatcher() -> None:
    """A worker becomes the dispatcher, unless one already is (jobs.tasks.tick)."""
    async_task("jobs.tasks.tick", task_name="dispatcher", group="dispatcher", broker=_broker())


def enqueue_safely(enqueue: Callable[..., None], *args, **kwargs) -> bool:
    """Enqueue, or log why not: the saved state is the outbox, a sweep enqueues it later."""
    try:
        enqueue(*args, **kwargs)
    except Exception:
        log.exception("could not enqueue %s%r; the dispatcher's sweeps will pick it up", enqueue.__name__, args)
        return False
    return True


def enqueue_on_commit(enqueue: Callable[..., None], *args, **kwargs) -> None:
    """Enqueue once the current transaction commits; a broker error is logged, never raised."""
    transaction.on_commit(partial(enqueue_safely, enqueue, *args, **kwargs))


def enqueue_event_notify(event_id: int) -> None:
    """Hand a committed job event to the notifications app (notifications.tasks.job_event_notify),
    named by path: jobs never imports it."""
    async_task("notifications.tasks.job_event_notify", event_id, task_name=f"notify event {event_id}", group="notify", broker=_broker())


def enqueue_operators_alert(*, kind: str, message: str, dedupe_key: str, workspace_id: int | None = None) -> None:
    """Tell the operators (notifications.tasks.operators_alert): e.g. the provider refuses
    the key or the quota. Without the notifications app the alert is only logged, at error
    level, so log-based alerting still sees it."""
    if not apps.is_installed("notifications"):
        log.error("operators not notified (no notifications app): %s", message)
        return
    async_task(
        "notifications.tasks.operators_alert", kind, message, dedupe_key, workspace_id,
        task_name=f"alert operators: {kind}", group="notify", broker=_broker(),
    )
