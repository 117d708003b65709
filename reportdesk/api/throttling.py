"""Per-user throttling. Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read at
request time (DRF's own classes freeze them at import, which settings overrides cannot reach).

A rate such as "60/minute" is kept as a generic cell rate (GCRA): each key holds one number,
the time at which its allowance is whole again. A request moves that time on by one interval
(a minute ÷ 60) and is refused when it would lie more than the period ahead. So a user may
burst up to the whole allowance and then goes on at the rate, and `Retry-After` is exact.
DRF's own throttles keep a list of every request's time instead, read and written whole on
each request: at high rates that list is thousands of entries, and two processes that read it
at once both write their own version back.

Counters live in Django's default cache. On Redis (reportdesk.cache.RedisCache) a request is
one atomic script call, exact across every web process, by Redis's clock. Any other cache is
updated under a lock in this process: exact for the per-process default, approximate for a
cache shared between processes. When the cache is down the throttle lets requests through
(and logs it): an outage of the counters must not take the API down with it.
"""

from __future__ import annotations

import logging
import threading
import time

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger(__name__)
_lock = threading.Lock()
# 60/7 added up 7 times can come out a hair above 60 (and Redis keeps microseconds): the
# 7th request is still allowed.
SLACK = 1e-3


def take(cache, key: str, *, interval: float, period: float, now: float | None = None) -> float:
    """Spend one request of `key`'s allowance (one request per `interval`, at most `period`
    ahead): 0 when it is allowed, else the seconds until one would be. `now` None: the
    cache's clock where it has one (Redis, shared by every web host), else this host's."""
    # Through django.core.cache.cache, a proxy: the backend's own method, when it has one.
    rate_take = getattr(cache, "rate_take", None)
    if rate_take is not None:
        return rate_take(key, now=now, interval=interval, period=period, slack=SLACK)
    now = time.time() if now is None else now
    with _lock:
        held = cache.get(key)
        whole_at = max(held if isinstance(held, float) else now, now) + interval
        if whole_at - now > period + SLACK:
            return whole_at - now - period
        cache.set(key, whole_at, timeout=max(1, int(whole_at - now) + 1))
        return 0.0


class _CellRate(UserRateThrottle):
    # Not DRF's key: a list of times left there by an older release is not a number.
    cache_format = "throttle_cell_%(scope)s_%(ident)s"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if self.rate is None or (key := self.get_cache_key(request, view)) is None:
            return True
        if self.num_requests <= 0:  # "0/minute": nothing is allowed
            self.wait_seconds = self.duration
            return False
        try:
            self.wait_seconds = take(self.cache, key, interval=self.duration / self.num_requests, period=self.duration)
        except Exception:
            log.warning("throttle %s: the cache is unavailable; letting the request through", self.scope, exc_info=True)
            return True
        return self.wait_seconds == 0

    def wait(self):
        return self.wait_seconds


class UserThrottle(_CellRate):
    """Every request of one user (or, unauthenticated, one address)."""

    scope = "user"


class SubmitThrottle(_CellRate):
    """Writes that create work: submitting jobs, adding sources, reruns."""

    scope = "submit"
