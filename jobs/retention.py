"""Retention at the provider: delete our stored responses there once their job is long over.

Background mode needs `store=true`, so every response — and with it every source text we sent
— stays at the provider for 30 days unless deleted. With PROVIDER_DELETE_AFTER_DAYS set, a
scheduled task deletes the responses of jobs that finished (completed, failed, canceled,
expired, rejected) at least that many days ago, and marks each call `deleted_at`. Our own
database keeps the report, its artifacts and the call's output: nothing a reader sees is lost.
A later revision of such a job cannot chain to the deleted draft response; it sends the draft
and the reviewer's notes as input instead (jobs.worker.prompt).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from .models import TERMINAL_STATUSES, CallStatus, ProviderCall
from .providers import get_provider
from .providers.base import Provider, ProviderError

log = logging.getLogger(__name__)

BATCH = 200  # deletions per run; the hourly schedule catches up on the rest


def responses_due_for_deletion(*, now: dt.datetime | None = None):
    days = settings.PROVIDER_DELETE_AFTER_DAYS
    if days is None:
        return ProviderCall.objects.none()
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    return (
        ProviderCall.objects.filter(
            deleted_at__isnull=True, provider_response_id__isnull=False,
            job__status__in=TERMINAL_STATUSES, job__finished_at__lte=cutoff,
        )
        .exclude(status__in=CallStatus.LIVE)
        .order_by("id")
    )


def provider_responses_delete(*, provider: Provider | None = None, now: dt.datetime | None = None) -> int:
    """Delete a batch of responses due for deletion at the provider. Returns how many went.
    A call the provider refuses is left for the next run (a transient error) or logged."""
    calls = list(responses_due_for_deletion(now=now)[:BATCH])
    if not calls:
        return 0
    provider = provider or get_provider()
    deleted = 0
    for call in calls:
        try:
            provider.delete(call.provider_response_id)
        except ProviderError as exc:
            log.warning("could not delete %s at the provider: %s", call.provider_response_id, exc.message)
            continue
        ProviderCall.objects.filter(pk=call.pk).update(deleted_at=timezone.now())
        deleted += 1
    return deleted
