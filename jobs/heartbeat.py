"""The dispatcher's lease and heartbeat: exactly one dispatcher runs at a time.

The dispatcher is a django-q2 task that loops for TICK_SECONDS and then hands over to a
successor it enqueues itself, so one worker process is always the dispatcher and the rest do
the work. It holds a lease on the "dispatcher" heartbeat row and renews it every few seconds;
any other dispatcher task (the minute schedule acting as a watchdog, a job that starts, a
worker process that spawns) finds the lease held and exits at once. When the dispatcher dies,
its lease goes stale after STALE_SECONDS and the next one to try takes over.
"""

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import WorkerHeartbeat

DISPATCHER = "dispatcher"
BEAT_SECONDS = 5.0
STALE_SECONDS = BEAT_SECONDS * 3


def dispatcher_acquire(*, token: str, now=None) -> bool:
    """Take (or renew) the dispatcher lease for `token`. False if another holds it."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=STALE_SECONDS)
    taken = WorkerHeartbeat.objects.filter(name=DISPATCHER).filter(
        Q(owner=token) | Q(owner="") | Q(seen_at__lt=stale)
    ).update(owner=token, seen_at=now)
    if taken:
        return True
    try:
        with transaction.atomic():
            WorkerHeartbeat.objects.create(name=DISPATCHER, owner=token, seen_at=now)
        return True
    except IntegrityError:
        return False


def heartbeat_last_seen(*, name: str = DISPATCHER):
    return WorkerHeartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()


def dispatcher_is_alive(*, now=None) -> bool:
    row = WorkerHeartbeat.objects.filter(name=DISPATCHER).values("owner", "seen_at").first()
    now = now or timezone.now()
    return bool(row and row["owner"] and now - row["seen_at"] < dt.timedelta(seconds=STALE_SECONDS))


def dispatcher_ensure() -> None:
    """Start a dispatcher now if none is running (a job started; a worker process spawned)."""
    if settings.TICK_SECONDS <= 0 or dispatcher_is_alive():
        return
    from .tasks import enqueue_tick

    enqueue_tick()


def dispatcher_handover(*, token: str) -> bool:
    """Release the lease at the end of a dispatcher's run. True if it was still ours, in which
    case the caller enqueues the successor."""
    return bool(WorkerHeartbeat.objects.filter(name=DISPATCHER, owner=token).update(owner="", seen_at=timezone.now()))
