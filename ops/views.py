"""GET /metrics: Prometheus' text format, for a scraper holding METRICS_TOKEN."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from .prometheus import metrics_registry


@never_cache
@require_GET
def prometheus_metrics(request):
    # Off (not merely refused) when no token is configured: nothing reveals the endpoint.
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off (METRICS_TOKEN is unset).")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
        response = HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
