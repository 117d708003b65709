"""The circuit breaker on provider calls, and the shared backoff under a rate limit.

A quota or credential failure (`insufficient_quota`, an invalid key, HTTP 401 or 403) is not
the job's fault and will fail every job the same way: it opens the breaker instead of failing
the job. The API key is the installation's, so the breaker's scope is the installation (the
model also keys a workspace scope, should keys ever be per workspace). While it is open no
worker makes a provider call: queued jobs stay queued, preparing and running ones wait, each
rescheduled for the next probe. Operators see a banner in the admin and are notified once per
opening. The breaker closes when a probe passes (one worker at a time sends the provider's
smallest billable request, with backoff between probes) or when an operator clears it.

An organisation-wide 429 (a rate limit, not a quota error) sets `backoff_until` for the
installation: every job waits it out together instead of each backing off on its own.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from reportdesk.errors import PermissionDenied

from . import policy, queue
from .models import ACTIVE_STATUSES, JobStatus, ProviderBreaker, ReportJob
from .providers.base import Provider, ProviderError

log = logging.getLogger(__name__)

INSTALLATION = ProviderBreaker.INSTALLATION
_BREAKER_CODES = frozenset({"insufficient_quota", "invalid_api_key", "invalid_organization", "account_deactivated"})


def is_breaker_error(error: ProviderError) -> bool:
    """A failure of the account, not of the request: every call would fail the same way."""
    return error.code in _BREAKER_CODES or error.status_code in (401, 403)


def is_shared_rate_limit(error: ProviderError) -> bool:
    return error.status_code == 429 and error.transient


def _scopes(workspace_id: int | None) -> list[str]:
    return [INSTALLATION] + ([f"workspace:{workspace_id}"] if workspace_id else [])


def _probe_delay(probes: int) -> float:
    return min(settings.BREAKER_PROBE_MAX_SECONDS, settings.BREAKER_PROBE_SECONDS * 2**probes)


def breaker_trip(*, error: ProviderError) -> bool:
    """Open the installation's breaker (or keep it open). Returns True when this opened it:
    operators are then notified, once."""
    now = timezone.now()
    with transaction.atomic():
        breaker, _ = ProviderBreaker.objects.select_for_update().get_or_create(scope=INSTALLATION)
        opened = breaker.opened_at is None
        if opened:
            breaker.opened_at = now
            breaker.probes = 0
            breaker.next_probe_at = now + dt.timedelta(seconds=_probe_delay(0))
            breaker.cleared_at, breaker.cleared_by, breaker.cleared_how = None, None, ""
        breaker.code = (error.code or str(error.status_code or ""))[:100]
        breaker.message = error.message[:2000]
        breaker.save()
        _changed()
        if opened:
            log.error("provider breaker opened: %s %s", breaker.code, breaker.message)
            message = (
                f"The provider refused a call with {breaker.code}: {breaker.message}\n\n"
                "No new provider calls are made until a probe passes or an operator clears the hold "
                "in the admin (Provider holds). Queued jobs stay queued."
            )
            queue.enqueue_on_commit(
                queue.enqueue_operators_alert, kind="provider_refused", message=message,
                dedupe_key=f"breaker:{now.isoformat()}",
            )
    return opened


def backoff_share(*, seconds: float) -> None:
    """Every job waits at least `seconds` before its next provider call."""
    until = timezone.now() + dt.timedelta(seconds=seconds)
    ProviderBreaker.objects.get_or_create(scope=INSTALLATION)
    ProviderBreaker.objects.filter(scope=INSTALLATION).filter(Q(backoff_until__isnull=True) | Q(backoff_until__lt=until)).update(
        backoff_until=until
    )
    _changed()


def job_hold(*, job_id: int, until: dt.datetime) -> None:
    """Look at the job again when the hold may be over (its state is left as it is)."""
    ReportJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(next_check_at=until)


def breaker_rows() -> BreakerSnapshot:
    """Every breaker and backoff row (a handful), read once for a batch of steps."""
    generation = _changes
    return BreakerSnapshot(rows=tuple(ProviderBreaker.objects.all()), generation=generation)


# Bumped whenever this process starts or ends a hold: a snapshot taken before it is read again.
_changes = 0


def _changed() -> None:
    global _changes
    _changes += 1


@dataclass(frozen=True)
class BreakerSnapshot:
    """The breaker rows as a batch read them once for all its steps, and when."""

    rows: tuple[ProviderBreaker, ...]
    generation: int

    def holds(self, scopes: list[str] | None = None) -> bool:
        """Does a row (of `scopes`, or of any scope) hold provider calls now: an open breaker
        or a shared backoff not yet over?"""
        now = timezone.now()
        return any(
            (scopes is None or row.scope in scopes) and (row.is_open or (row.backoff_until is not None and row.backoff_until > now))
            for row in self.rows
        )

    def current(self) -> bool:
        """No hold has started or ended in this process since the snapshot was read (one
        started by another process shows at the next batch)."""
        return self.generation == _changes


def breaker_admits(*, job: ReportJob, provider: Provider, snapshot: BreakerSnapshot | None = None) -> bool:
    """May the worker make provider calls for `job` now? When a hold is in force the job is
    rescheduled for its end and this says no — unless the breaker's probe is due, this worker
    wins it, and it passes (then the breaker closes and the job goes on).

    `snapshot` (breaker_rows(), read by a batch before its polls) answers the common case, no
    hold at all, without a query per step; a snapshot that shows a hold, or that a hold begun
    since in this process (an earlier step of the batch met a 429) has made stale, is read
    again here."""
    scopes = _scopes(job.workspace_id)
    if snapshot is not None and snapshot.current() and not snapshot.holds(scopes):
        return True
    now = timezone.now()
    rows = list(ProviderBreaker.objects.filter(scope__in=scopes))
    open_rows = [row for row in rows if row.is_open]
    if not open_rows:
        waits = [row.backoff_until for row in rows if row.backoff_until and row.backoff_until > now]
        if waits:
            job_hold(job_id=job.pk, until=max(waits))
            return False
        return True
    breaker = open_rows[0]
    if breaker.next_probe_at and breaker.next_probe_at <= now and _probe_claim(breaker):
        try:
            provider.probe()
        except ProviderError as exc:
            log.warning("provider probe failed: %s %s", exc.code, exc.message)
            ProviderBreaker.objects.filter(pk=breaker.pk).update(code=(exc.code or breaker.code)[:100], message=exc.message[:2000])
        else:
            _close(breaker.pk, how="a probe passed")
            return True
    breaker.refresh_from_db(fields=["next_probe_at"])
    job_hold(job_id=job.pk, until=breaker.next_probe_at or now + dt.timedelta(seconds=settings.BREAKER_PROBE_SECONDS))
    return False


def _probe_claim(breaker: ProviderBreaker) -> bool:
    """One worker probes at a time: a conditional update moves the next probe on."""
    now = timezone.now()
    return bool(
        ProviderBreaker.objects.filter(pk=breaker.pk, opened_at__isnull=False, next_probe_at__lte=now).update(
            probes=F("probes") + 1, next_probe_at=now + dt.timedelta(seconds=_probe_delay(breaker.probes + 1))
        )
    )


def _close(scope: str, *, how: str, user=None) -> bool:
    closed = ProviderBreaker.objects.filter(pk=scope, opened_at__isnull=False).update(
        opened_at=None, next_probe_at=None, cleared_at=timezone.now(), cleared_by=user, cleared_how=how
    )
    if closed:
        _changed()
        log.warning("provider breaker %s closed: %s", scope, how)
        # Jobs held before their first call were told to come back at the next probe: now.
        ReportJob.objects.filter(
            status__in=(JobStatus.QUEUED, JobStatus.PREPARING), next_check_at__gt=timezone.now()
        ).update(next_check_at=timezone.now())
    return bool(closed)


def breaker_clear(*, scope: str, actor) -> bool:
    """An operator resumes provider calls. Returns False if the hold was already over."""
    if not policy.may_clear_provider_hold(actor):
        raise PermissionDenied("Clearing a provider hold needs the operator role.")
    return _close(scope, how=f"cleared by {actor.get_username()}", user=actor)


def breakers_open() -> list[ProviderBreaker]:
    """The holds in force, for the operators' banner."""
    return list(ProviderBreaker.objects.filter(opened_at__isnull=False).order_by("scope"))
