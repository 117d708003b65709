"""HTTP endpoints of the jobs app outside the REST API: the provider's webhook."""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import WebhookError, webhook_receive

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def openai_webhook(request):
    if not settings.OPENAI_WEBHOOK_SECRET:
        return JsonResponse(
            {"error": {"code": "not_configured", "message": "Webhooks are not configured (set OPENAI_WEBHOOK_SECRET).", "fields": {}}},
            status=503,
        )
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        outcome = webhook_receive(payload=request.body, headers=headers)
    except WebhookError as exc:
        log.warning("rejected a provider webhook: %s", exc.message)
        return JsonResponse({"error": {"code": "invalid_signature", "message": exc.message, "fields": {}}}, status=400)
    return JsonResponse({"status": outcome})
