"""django-q2 task entry points. Thin: they take ids, call one service, and are safe to run
twice (django-q2 delivers at least once)."""

from __future__ import annotations

import structlog
from django_q.models import Schedule
from django_q.tasks import async_task

from . import execution, heartbeat, worker


def enqueue_advance(job_id: int, lease_token: str | None = None) -> None:
    async_task("jobs.tasks.advance_job", job_id, lease_token, task_name=f"advance job {job_id}", group="advance")


def enqueue_provider_cancel(response_id: str) -> None:
    async_task("jobs.tasks.cancel_at_provider", response_id, task_name=f"cancel {response_id}", group="cancel")


def advance_job(job_id: int, lease_token: str | None = None) -> None:
    execution.job_advance(job_id=job_id, lease_token=lease_token)


def cancel_at_provider(response_id: str) -> None:
    execution.provider_cancel(response_id=response_id)


def enqueue_tick() -> None:
    async_task("jobs.tasks.tick", task_name="dispatcher", group="dispatcher")


def tick() -> int:
    """Be the dispatcher for a while, then hand over to a successor (unless another
    dispatcher already held the lease, in which case this returns at once)."""
    token = execution.new_lease_token()
    dispatched = -1
    with structlog.contextvars.bound_contextvars(dispatcher=token):
        try:
            dispatched = worker.tick_loop(enqueue=enqueue_advance, token=token)
        finally:
            # Even if this run died of an error, the successor starts now rather than when the
            # watchdog schedule next fires.
            if heartbeat.dispatcher_handover(token=token):
                enqueue_tick()
    return dispatched


SCHEDULES = {
    "reportdesk: dispatch due jobs": {"func": "jobs.tasks.tick", "schedule_type": Schedule.MINUTES, "minutes": 1},
}


def schedules_ensure() -> None:
    """Create or update the schedules this app needs. Idempotent; runs after every migrate."""
    for name, spec in SCHEDULES.items():
        Schedule.objects.update_or_create(name=name, defaults={**spec, "repeats": -1})
