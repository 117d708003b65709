"""The dispatcher and the sweeps: what keeps every job moving without a browser.

django-q2 fires a schedule at most about every 30 s and its finest interval is a minute, yet
a new response should be checked within a few seconds. So the dispatcher is a task that
stays: for TICK_SECONDS it claims, every TICK_INTERVAL, the jobs whose next_check_at has come
(a lease, one conditional UPDATE for the whole batch) and hands them to the queue in batches
of ADVANCE_BATCH as `advance_batch` tasks, which any worker on any host may run (a worker
keeps a batch's polls in flight together: jobs.worker.batch); then it enqueues its successor.
Exactly one runs at a time (the dispatcher lease, jobs.worker.lease); the minute schedule
is only its watchdog.
Per-job cadence lives in next_check_at, so the dispatcher's cost per cycle does not grow with
the number of jobs in flight.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from .. import queue, services
from ..events import SCHEDULER
from ..models import ACTIVE_STATUSES, CallStatus, JobStatus, ProviderCall, ReportJob
from .graceful_stop import stop_requested
from .lease import BEAT_SECONDS, STALE_SECONDS, dispatcher_is_alive, dispatcher_lease_acquire, new_lease_token
from .reconcile import deliveries_to_match

log = logging.getLogger(__name__)

# The sweeps run this often: a job whose worker died is due again within a few seconds of
# its lease running out.
SWEEP_SECONDS = 10.0

_watch: threading.Thread | None = None
_watch_lock = threading.Lock()


def dispatcher_ensure() -> None:
    """Start a dispatcher now if none is running (a job started; a worker process spawned)."""
    if settings.TICK_SECONDS <= 0 or dispatcher_is_alive():
        return
    queue.enqueue_dispatcher()


def dispatcher_watch(*, stop: threading.Event | None = None) -> threading.Thread:
    """In a worker process: start a dispatcher whenever none is alive. A SIGKILLed cluster
    leaves a dispatcher lease that looks alive for up to STALE_SECONDS, and a successor that
    could not be enqueued (a broker outage) leaves none; without this watch the next one
    would wait for the minute schedule. One watch per process: a second call returns the
    first one's thread while it runs."""
    global _watch
    with _watch_lock:
        if _watch is not None and _watch.is_alive():
            return _watch
    stop = stop or threading.Event()

    def watch():
        while not stop.wait(STALE_SECONDS / 2):
            try:
                dispatcher_ensure()
            except Exception:
                log.warning("dispatcher watch: could not start a dispatcher", exc_info=True)
            finally:
                close_old_connections()

    with _watch_lock:
        if _watch is not None and _watch.is_alive():
            return _watch
        _watch = threading.Thread(target=watch, name="dispatcher-watch", daemon=True)
        _watch.start()
        return _watch


def jobs_claim_due(*, limit: int, now=None) -> tuple[str, list[int]]:
    """Lease up to `limit` due jobs for this dispatcher. Three queries, whatever the count."""
    now = now or timezone.now()
    due = (
        ReportJob.objects.filter(status__in=ACTIVE_STATUSES, next_check_at__lte=now)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("next_check_at")
    )
    ids = list(due.values_list("pk", flat=True)[:limit])
    if not ids:
        return "", []
    token = new_lease_token()
    due.filter(pk__in=ids).update(
        lease_token=token, lease_expires_at=now + dt.timedelta(seconds=settings.LEASE_SECONDS)
    )
    return token, list(ReportJob.objects.filter(pk__in=ids, lease_token=token).values_list("pk", flat=True))


def dispatch_due(*, enqueue=queue.enqueue_batch_advance, limit: int | None = None, batch: int | None = None) -> int:
    """Claim due jobs and hand them on in batches, `enqueue(job_ids, lease_token)` for each
    batch of up to `batch` (ADVANCE_BATCH). Returns how many jobs."""
    token, ids = jobs_claim_due(limit=limit or settings.TICK_BATCH)
    size = max(1, batch or settings.ADVANCE_BATCH)
    for start in range(0, len(ids), size):
        enqueue(ids[start : start + size], token)
    return len(ids)


def tick_loop(*, enqueue=queue.enqueue_batch_advance, seconds: float | None = None, interval: float | None = None, sleep=time.sleep, token: str | None = None) -> int:
    """Be the dispatcher for `seconds`: dispatch due jobs every `interval`, run the sweeps
    every SWEEP_SECONDS, renew the lease every few seconds. Returns at once (0) if another
    dispatcher holds the lease, and -1 if the lease was lost midway."""
    seconds = settings.TICK_SECONDS if seconds is None else seconds
    interval = settings.TICK_INTERVAL if interval is None else interval
    token = token or new_lease_token()
    if not dispatcher_lease_acquire(token=token):
        return 0
    started = time.monotonic()
    next_sweep = started
    next_beat = started + BEAT_SECONDS
    dispatched = 0
    while True:
        try:
            if time.monotonic() >= next_beat:
                if not dispatcher_lease_acquire(token=token):
                    log.warning("dispatcher lease lost; stopping")
                    return -1
                next_beat = time.monotonic() + BEAT_SECONDS
            if time.monotonic() >= next_sweep:
                if not connection.in_atomic_block:
                    # A long-lived task: drop connections the database has timed out or broken.
                    close_old_connections()
                next_sweep = time.monotonic() + SWEEP_SECONDS
                sweep()
            batch = dispatch_due(enqueue=enqueue)
        except Exception:
            # One bad cycle (a locked database, a broken job) must not stop the dispatcher.
            log.exception("dispatcher cycle failed")
            batch = 0
        dispatched += batch
        if time.monotonic() - started >= seconds or stop_requested():
            return dispatched
        if batch < settings.TICK_BATCH:
            sleep(interval)


def sweep() -> None:
    for step in (recovery_sweep, expiry_sweep, orphan_sweep):
        try:
            step()
        except Exception:
            log.exception("%s failed", step.__name__)


def recovery_sweep(*, now=None) -> int:
    """Find work a dead worker left half-done and make it due again.

    A lease that expired means the worker holding it stopped; a call recorded without a
    response id long after its create began means the worker died mid-create. Both become
    due now; job_advance sorts out the rest (attempt_start marks a lost call).
    """
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=settings.LEASE_SECONDS)
    expired_leases = ReportJob.objects.filter(status__in=ACTIVE_STATUSES, lease_expires_at__lt=now).exclude(lease_token="")
    count = expired_leases.update(lease_token="", lease_expires_at=None, next_check_at=now)
    orphan_jobs = ProviderCall.objects.filter(
        status=CallStatus.PENDING, provider_response_id=None, created_at__lt=stale, job__status__in=ACTIVE_STATUSES
    ).values_list("job_id", flat=True)
    count += ReportJob.objects.filter(pk__in=list(orphan_jobs), lease_token="").update(next_check_at=now)
    # Jobs that lost their schedule altogether (should not happen; cheap to guard).
    count += ReportJob.objects.filter(status__in=ACTIVE_STATUSES, next_check_at__isnull=True).update(next_check_at=now)
    if count:
        log.info("recovery sweep made %s job(s) due again", count)
    return count


def expiry_sweep(*, now=None) -> int:
    """Expire jobs past their deadline: unfinished work, and drafts nobody reviewed in time."""
    now = now or timezone.now()
    overdue = ReportJob.objects.filter(
        status__in=[*ACTIVE_STATUSES, JobStatus.NEEDS_REVIEW], deadline__lt=now
    ).only("pk")
    expired = 0
    for job in overdue[:500]:
        try:
            services.job_expire(job=job, actor=SCHEDULER, reason="The deadline passed before the report was delivered.")
            expired += 1
        except Exception:
            log.exception("could not expire job %s", job.pk)
    return expired


def orphan_sweep(
    *, enqueue_cancel=queue.enqueue_provider_cancel, enqueue_match=queue.enqueue_response_match, limit: int = 20
) -> int:
    """Cancel provider responses still running that nobody needs: the job stopped (canceled,
    expired, failed) while a response was live, the response is an orphan (a duplicate of
    a create), or a cancel failed for a passing reason. And hand out the webhooks naming a
    response still to be matched to its create. Each is a task; the next sweep tries again
    if it fails (a broker outage: the rows are the outbox)."""
    stopped = [*ACTIVE_STATUSES, JobStatus.NEEDS_REVIEW, JobStatus.COMPLETED]
    live = ProviderCall.objects.live().filter(Q(orphan=True) | ~Q(job__status__in=stopped))
    ids = list(live.values_list("provider_response_id", flat=True)[:limit])
    for response_id in ids:
        enqueue_cancel(response_id)
    to_match = deliveries_to_match()[:limit]
    for response_id in to_match:
        enqueue_match(response_id)
    return len(ids) + len(to_match)
