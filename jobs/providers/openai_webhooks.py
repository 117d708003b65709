"""OpenAI's webhooks: verify a delivery's signature and read the event it carries.

Apart from openai_provider because the web process serves this endpoint while the provider
itself runs in workers: the SDK is imported only when a delivery arrives (memory of every
web process).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai


class WebhookError(Exception):
    """A webhook we must not trust or cannot read: bad or missing signature, stale, malformed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class WebhookEvent:
    id: str  # the event id ("evt_..."); dedupe deliveries on the `webhook-id` header
    type: str  # "response.completed", "response.failed", "response.cancelled", ...
    response_id: str  # "" for events that are not about a response


@functools.cache
def _webhook_client() -> openai.OpenAI:
    import openai  # here, not at the top: see the module docstring

    return openai.OpenAI(api_key="unused")


def parse_webhook(*, payload: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """Verify a webhook's Standard Webhooks signature (timestamps within 5 minutes) and read it.

    The event only names the response: fetch it to learn the result.
    """
    if not secret:
        raise WebhookError("No webhook secret is configured.")
    try:
        _webhook_client().webhooks.verify_signature(payload, dict(headers), secret=secret)
        event = json.loads(payload)
    except ValueError as exc:  # InvalidWebhookSignatureError, a missing header, bad JSON
        raise WebhookError(str(exc) or "Invalid webhook.") from exc
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not all(
        isinstance(value, str) for value in (event.get("id"), event.get("type"), data.get("id"))
    ):
        raise WebhookError("Webhook payload is not an event with an id, a type and data.id.")
    response_id = data["id"] if event["type"].startswith("response.") else ""
    return WebhookEvent(id=event["id"], type=event["type"], response_id=response_id)
