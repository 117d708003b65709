"""Per-user throttling. Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read at
request time (DRF's own classes freeze them at import, which settings overrides cannot reach).

Counters live in Django's default cache: per process with the default local-memory cache, so
a multi-process deployment wants a shared cache (Redis) for the limits to be exact. When
that cache is down the throttle lets requests through (and logs it): an outage of the
counters must not take the API down with it.
"""

import logging

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)


class _LiveRates:
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:
            log.warning("throttle %s: the cache is unavailable; letting the request through", self.scope, exc_info=True)
            return True


class UserThrottle(_LiveRates, UserRateThrottle):
    """Every request of one user (or, unauthenticated, one address)."""

    scope = "user"


class SubmitThrottle(_LiveRates, UserRateThrottle):
    """Writes that create work: submitting jobs, adding sources, reruns."""

    scope = "submit"
