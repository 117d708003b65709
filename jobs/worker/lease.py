"""Leases: who may work on something right now.

Two leases of one shape — a token that holds it, an expiry that frees it if the holder dies,
and acquire / renew / release:
- the **job lease** (ReportJob.lease_token / lease_expires_at): one worker steps a job at a
  time; while the step runs a heartbeat thread renews it every quarter of LEASE_SECONDS (a
  provider call may take a minute), so a worker that dies loses the job within LEASE_SECONDS;
- the **dispatcher lease** (the "dispatcher" WorkerHeartbeat row): exactly one dispatcher
  runs; it renews every BEAT_SECONDS, and STALE_SECONDS without a renewal frees it.
Each acquire is one conditional UPDATE, so two workers racing for a lease cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import threading

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import ACTIVE_STATUSES, ReportJob, WorkerHeartbeat

log = logging.getLogger(__name__)

DISPATCHER = "dispatcher"
BEAT_SECONDS = 5.0
STALE_SECONDS = BEAT_SECONDS * 3


def new_lease_token() -> str:
    return secrets.token_hex(8)


# --- The job lease ------------------------------------------------------------------------


def job_lease_expiry():
    return timezone.now() + dt.timedelta(seconds=settings.LEASE_SECONDS)


def job_lease_acquire(*, job_id: int, token: str) -> bool:
    """Take the job's lease if it is free, expired, or already ours."""
    now = timezone.now()
    return bool(
        ReportJob.objects.filter(pk=job_id)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_token=token))
        .update(lease_token=token, lease_expires_at=job_lease_expiry())
    )


def job_lease_renew(*, job_id: int, token: str) -> bool:
    """Extend our lease before something slow. False if another worker has taken the job."""
    return bool(ReportJob.objects.filter(pk=job_id, lease_token=token).update(lease_expires_at=job_lease_expiry()))


@contextlib.contextmanager
def job_lease_heartbeat(*, job_id: int, token: str):
    """Renew the job's lease every LEASE_SECONDS / 4 for as long as the block runs, from a
    thread of its own: the step itself may be waiting on the provider or a source."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(settings.LEASE_SECONDS / 4):
                if not job_lease_renew(job_id=job_id, token=token):
                    return  # taken over: still_ours() stops the step before its next write
        except Exception:
            log.exception("job %s: could not renew the lease", job_id)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        # Not forever: a renewal waiting on a row lock must not hold the step's end.
        thread.join(timeout=5)


def job_lease_release(*, job_id: int, token: str, since=None) -> None:
    """Give the job back. A job still in flight that nobody scheduled gets a check a minute
    from now, so a step that ended early can never make the dispatcher spin on it. With
    `since` (when the step began), a job made due during the step (its response's webhook or
    stream announced the end) stays due."""
    now = timezone.now()
    ReportJob.objects.filter(
        pk=job_id, lease_token=token, status__in=ACTIVE_STATUSES, next_check_at__lte=min(now, since or now)
    ).update(next_check_at=now + dt.timedelta(seconds=settings.POLL_MAX_SECONDS))
    ReportJob.objects.filter(pk=job_id, lease_token=token).update(lease_token="", lease_expires_at=None)


# --- The dispatcher lease -----------------------------------------------------------------


def dispatcher_lease_acquire(*, token: str, now=None) -> bool:
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


def dispatcher_lease_release(*, token: str) -> bool:
    """Release the lease at the end of a dispatcher's run. True if it was still ours, in which
    case the caller enqueues the successor."""
    return bool(WorkerHeartbeat.objects.filter(name=DISPATCHER, owner=token).update(owner="", seen_at=timezone.now()))


def heartbeat_last_seen(*, name: str = DISPATCHER):
    return WorkerHeartbeat.objects.filter(name=name).values_list("seen_at", flat=True).first()


def dispatcher_is_alive(*, now=None) -> bool:
    row = WorkerHeartbeat.objects.filter(name=DISPATCHER).values("owner", "seen_at").first()
    now = now or timezone.now()
    return bool(row and row["owner"] and now - row["seen_at"] < dt.timedelta(seconds=STALE_SECONDS))
