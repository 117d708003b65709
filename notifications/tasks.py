"""django-q2 task entry points of the notifications app. Thin: they take ids or plain
values, call one service, and are safe to run twice.

jobs reaches this app only through `job_event_notify`, enqueued by path after each JobEvent
commits; other apps raise an operator alert through `operators_alert` the same way.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule

from jobs.models import ReportJob
from reportdesk.models import Workspace

from . import services


def job_event_notify(event_id: int) -> None:
    services.job_event_notify(event_id=event_id)


def deliver(delivery_id: int, trigger: str = "initial") -> None:
    services.delivery_attempt(delivery_id=delivery_id, trigger=trigger)


def deliveries_due() -> int:
    return services.deliveries_enqueue_due()


def log_prune() -> int:
    return services.log_prune()


def events_missed() -> int:
    return services.events_missed_enqueue()


def operators_alert(kind: str, message: str, dedupe_key: str, workspace_id: int | None = None, job_id: int | None = None) -> int:
    """Mail the operators (of one workspace, or of all when `workspace_id` is None), e.g.
    `async_task("notifications.tasks.operators_alert", "provider_refused", "<what the provider said>",
    "breaker:<opened at>")`."""
    workspace = Workspace.objects.filter(pk=workspace_id).first() if workspace_id is not None else None
    job = ReportJob.objects.select_related("workspace").filter(pk=job_id).first() if job_id is not None else None
    return services.operators_notify(kind=kind, message=message, dedupe_key=dedupe_key, workspace=workspace, job=job)


def stuck_jobs_check() -> int:
    return services.stuck_jobs_check()


def digest_send() -> int:
    return services.digest_send()


def _next_digest_run() -> dt.datetime:
    now = timezone.localtime()
    run = now.replace(hour=settings.DIGEST_HOUR, minute=0, second=0, microsecond=0)
    return run if run > now else run + dt.timedelta(days=1)


SCHEDULES = {
    "notifications: webhook retries": {"func": "notifications.tasks.deliveries_due", "schedule_type": Schedule.MINUTES, "minutes": 1},
    "notifications: missed events": {"func": "notifications.tasks.events_missed", "schedule_type": Schedule.MINUTES, "minutes": 1},
    "notifications: stuck jobs": {"func": "notifications.tasks.stuck_jobs_check", "schedule_type": Schedule.MINUTES, "minutes": 5},
    "notifications: review digest": {"func": "notifications.tasks.digest_send", "schedule_type": Schedule.DAILY},
    "notifications: prune the log": {"func": "notifications.tasks.log_prune", "schedule_type": Schedule.HOURLY},
}


def schedules_ensure() -> None:
    """Create or update this app's schedules. Idempotent; runs after every migrate."""
    for name, spec in SCHEDULES.items():
        create = {"next_run": _next_digest_run()} if spec["schedule_type"] == Schedule.DAILY else {}
        Schedule.objects.update_or_create(name=name, defaults={**spec, "repeats": -1}, create_defaults={**spec, "repeats": -1, **create})
