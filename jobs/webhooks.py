"""Provider webhooks: a signed event from OpenAI wakes the job it concerns at once.

The event only names the response; the worker fetches it to learn the result, so a webhook
never changes a job's state by itself — polling stays as the fallback. Deliveries are
deduplicated on their `webhook-id` (the provider retries and may deliver twice).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import events, services
from .models import CallStatus, JobStatus, ProviderCall, ReportJob, WebhookDelivery
from .providers.openai_provider import WebhookError, parse_webhook

__all__ = ["WebhookError", "webhook_receive"]


def webhook_receive(*, payload: bytes, headers: Mapping[str, str]) -> str:
    """Verify, deduplicate and act on one delivery. Returns what happened, for the response
    body and the logs: "woken", "duplicate", "ignored". Raises WebhookError if untrusted."""
    event = parse_webhook(payload=payload, headers=headers, secret=settings.OPENAI_WEBHOOK_SECRET)
    delivery_id = headers.get("webhook-id") or event.id
    with transaction.atomic():
        # Deduplicate and wake in one transaction: if waking fails, the provider's
        # redelivery is not mistaken for a duplicate.
        try:
            with transaction.atomic():
                WebhookDelivery.objects.create(webhook_id=delivery_id, event_type=event.type, response_id=event.response_id)
        except IntegrityError:
            return "duplicate"
        call = (
            ProviderCall.objects.select_related("job").filter(provider_response_id=event.response_id).first()
            if event.response_id
            else None
        )
        # Only a response we are still following wakes its job: an event for an earlier
        # step, or for a response that already failed and is waiting for its retry, does not
        # cut a backoff short.
        if call is None or call.status not in CallStatus.LIVE:
            return "ignored"
        job = call.job
        woken = ReportJob.objects.filter(
            pk=job.pk, status=JobStatus.RUNNING, provider_response_id=event.response_id
        ).update(next_check_at=timezone.now())
        if not woken:
            return "ignored"
        events.provider_notified(job=job, details={"type": event.type, "response_id": event.response_id})
        services.job_advance_on_commit(job)
    return "woken"
