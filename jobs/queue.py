"""The one module that enqueues work for django-q2.

Tasks are named by their dotted path, so nothing of ours is imported here and no module that
enqueues pulls the worker into its import chain. Callers inside a transaction wrap these in
`transaction.on_commit` (jobs.services does) so a task never runs before its data exists.
"""

from __future__ import annotations

import logging

from django.apps import apps
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


def enqueue_operators_notify(*, subject: str, body: str) -> None:
    """Tell the operators (notifications.tasks.operators_notify, from the notifications app).

    The hook for operator alerts such as a provider hold. Until that app is installed the
    alert is only logged (at error level, so log-based alerting still sees it)."""
    if not apps.is_installed("notifications"):
        log.error("operators not notified (no notifications app): %s", subject)
        return
    async_task("notifications.tasks.operators_notify", subject, body, task_name="notify operators", group="notify")
