"""The one module of this app that enqueues: django-q2 tasks named by dotted path.

An enqueue runs after a commit, inside someone's request or task; a broker that is down must
not turn a change that already happened into an error, so each helper logs and moves on.
The minute sweep (`deliveries_due`) picks up any delivery whose task was lost. (A job event's
task is jobs.queue's, enqueued by jobs after its commit and by the `events_missed` sweep.)
"""

from __future__ import annotations

import logging

from django_q.tasks import async_task

log = logging.getLogger(__name__)


def _enqueue(func: str, *args, task_name: str, group: str) -> None:
    try:
        async_task(func, *args, task_name=task_name, group=group)
    except Exception:
        log.exception("could not enqueue %s", task_name)


def enqueue_delivery(delivery_id: int, trigger: str = "initial") -> None:
    _enqueue("notifications.tasks.deliver", delivery_id, trigger, task_name=f"deliver webhook {delivery_id}", group="webhooks")
