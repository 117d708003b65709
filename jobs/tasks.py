"""django-q2 entry points, and the schedules that call them. Nothing else lives here.

Thin: each takes ids, calls one function of the worker, and is safe to run twice (django-q2
delivers at least once). Queued tasks and Schedule rows name these by dotted path
(`jobs.tasks.advance_job`, ...), so the names stay. Enqueueing is jobs.queue's job.
"""

from __future__ import annotations

import structlog
from django_q.models import Schedule

from . import queue, retention
from .worker import batch, dispatcher, lease, reconcile, step


def advance_job(job_id: int, lease_token: str | None = None) -> None:
    step.job_advance(job_id=job_id, lease_token=lease_token)


def advance_batch(job_ids: list[int], lease_token: str) -> None:
    """Each job one step on, polls made together. A job whose step failed has it recorded on
    the job already; the task fails afterwards so django-q2 shows it too."""
    failed = batch.batch_advance(job_ids=job_ids, lease_token=lease_token)
    if failed:
        raise RuntimeError(f"the step failed for job(s) {failed}; see each job's worker_error event")


def cancel_at_provider(response_id: str) -> None:
    step.response_cancel(response_id=response_id)


def match_response(response_id: str) -> str:
    return reconcile.response_match(response_id=response_id)


def tick() -> int:
    """Be the dispatcher for a while, then hand over to a successor (unless another
    dispatcher already held the lease, in which case this returns at once)."""
    token = lease.new_lease_token()
    dispatched = -1
    with structlog.contextvars.bound_contextvars(dispatcher=token):
        try:
            dispatched = dispatcher.tick_loop(token=token)
        finally:
            # Even if this run died of an error, the successor starts now rather than when the
            # watchdog schedule next fires.
            if lease.dispatcher_lease_release(token=token):
                queue.enqueue_dispatcher()
    return dispatched


def delete_expired_responses() -> int:
    return retention.provider_responses_delete()


SCHEDULES = {
    "reportdesk: dispatch due jobs": {"func": "jobs.tasks.tick", "schedule_type": Schedule.MINUTES, "minutes": 1},
    # Does nothing unless PROVIDER_DELETE_AFTER_DAYS is set.
    "reportdesk: delete expired responses at the provider": {
        "func": "jobs.tasks.delete_expired_responses", "schedule_type": Schedule.HOURLY,
    },
}


def schedules_ensure() -> None:
    """Create or update the schedules this app needs. Idempotent; runs after every migrate."""
    for name, spec in SCHEDULES.items():
        Schedule.objects.update_or_create(name=name, defaults={**spec, "repeats": -1})
