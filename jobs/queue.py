"""The one module that enqueues work for django-q2.

Tasks are named by their dotted path, so nothing of ours is imported here and no module that
enqueues pulls the worker into its import chain. Callers inside a transaction wrap these in
`transaction.on_commit` (jobs.services does) so a task never runs before its data exists.
"""

from __future__ import annotations

import logging

from django_q.tasks import async_task

log = logging.getLogger(__name__)


def enqueue_job_advance(job_id: int, lease_token: str | None = None) -> None:
    """A worker moves the job one step on (jobs.tasks.advance_job)."""
    async_task("jobs.tasks.advance_job", job_id, lease_token, task_name=f"advance job {job_id}", group="advance")


def enqueue_provider_cancel(response_id: str) -> None:
    """A worker cancels the response at the provider (jobs.tasks.cancel_at_provider)."""
    async_task("jobs.tasks.cancel_at_provider", response_id, task_name=f"cancel {response_id}", group="cancel")


def enqueue_dispatcher() -> None:
    """A worker becomes the dispatcher, unless one already is (jobs.tasks.tick)."""
    async_task("jobs.tasks.tick", task_name="dispatcher", group="dispatcher")


def enqueue_event_notify(event_id: int) -> None:
    """Hand a committed job event to the notifications app (notifications.tasks.job_event_notify),
    named by path: jobs never imports it."""
    try:
        async_task("notifications.tasks.job_event_notify", event_id, task_name=f"notify event {event_id}", group="notify")
    except Exception:
        # The change is committed: a broker that is down must not fail the request that made it.
        log.exception("could not enqueue notifications for job event %s", event_id)
