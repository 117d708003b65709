"""Is the dispatcher alive? It writes a heartbeat every few seconds while it runs.

django-q2's scheduler starts the dispatcher about 30 s after a cluster starts and then once a
minute; when a job starts and no dispatcher has been seen for a while, one is started at once
so the first polls come within seconds, not at the next schedule.
"""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat

DISPATCHER = "dispatcher"
BEAT_SECONDS = 5.0


def heartbeat_beat(*, name: str = DISPATCHER, now=None) -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"seen_at": now or timezone.now()})


def heartbeat_last_seen(*, name: str = DISPATCHER):
    return WorkerHeartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()


def dispatcher_is_alive(*, now=None) -> bool:
    seen = heartbeat_last_seen()
    now = now or timezone.now()
    return seen is not None and now - seen < dt.timedelta(seconds=BEAT_SECONDS * 3)


def dispatcher_ensure() -> None:
    """Start a dispatcher now if none is running (called when a job starts)."""
    if settings.TICK_SECONDS <= 0 or dispatcher_is_alive():
        return
    from django_q.tasks import async_task

    # Beat first so a burst of starting jobs enqueues one dispatcher, not one each.
    heartbeat_beat()
    async_task("jobs.tasks.tick", task_name="dispatch due jobs (on demand)", group="tick")
