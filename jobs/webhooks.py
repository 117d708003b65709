"""Provider webhooks: a signed event from OpenAI wakes the job it concerns at once.

The event only names the response; the worker fetches it to learn the result, so a webhook
never changes a job's state by itself — polling stays as the fallback. Deliveries are
deduplicated on their `webhook-id` and on the event's own `id` (the provider retries, may
deliver twice, and the same event may come again under a new delivery id).

A response none of our calls knows may answer a create that never answered (a timeout, a
worker that died): the delivery is kept for a worker to match by the response's metadata
(jobs.worker.reconcile).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from reportdesk.jsonlimits import text_problem

from . import queue, services
from .models import ProviderCall, WebhookDelivery
from .providers.openai_webhooks import WebhookError, parse_webhook

__all__ = ["WebhookError", "webhook_receive"]


def _parse(*, payload: bytes, headers: Mapping[str, str]):
    try:
        event = parse_webhook(payload=payload, headers=headers, secret=settings.OPENAI_WEBHOOK_SECRET)
    except RecursionError:  # json refuses nesting at the interpreter's recursion limit
        raise WebhookError("Webhook payload is nested too deeply.") from None
    delivery_id = headers.get("webhook-id") or event.id
    for name, value in (("webhook-id", delivery_id), ("id", event.id), ("type", event.type), ("data.id", event.response_id)):
        if problem := text_problem(value):
            raise WebhookError(f"Webhook {name} {problem}.")
    if len(delivery_id) > 200 or len(event.id) > 200 or len(event.type) > 64 or len(event.response_id) > 200:
        raise WebhookError("Webhook ids are longer than any the provider sends.")
    return event, delivery_id


def webhook_receive(*, payload: bytes, headers: Mapping[str, str]) -> str:
    """Verify, deduplicate and act on one delivery. Returns what happened, for the response
    body and the logs: "woken", "duplicate", "ignored", "to_match". Raises WebhookError if
    untrusted or unreadable."""
    event, delivery_id = _parse(payload=payload, headers=headers)
    with transaction.atomic():
        # Deduplicate and wake in one transaction: if waking fails, the provider's
        # redelivery is not mistaken for a duplicate.
        if WebhookDelivery.objects.filter(Q(webhook_id=delivery_id) | Q(event_id=event.id)).exists():
            return "duplicate"
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    webhook_id=delivery_id, event_id=event.id, event_type=event.type, response_id=event.response_id
                )
        except IntegrityError:
            return "duplicate"
        if not event.response_id:
            return "ignored"
        call = ProviderCall.objects.select_related("job").filter(provider_response_id=event.response_id).first()
        if call is None:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(needs_match=True)
            queue.enqueue_on_commit(queue.enqueue_response_match, event.response_id)
            return "to_match"
        if not services.job_wake(call=call, details={"type": event.type, "response_id": event.response_id}):
            return "ignored"
    return "woken"
