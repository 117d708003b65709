"""The Redis cache backend (reportdesk.cache) the API's throttles count in: one client per
connection pool. (Its behaviour through a Redis outage and back is held by
tests/jobs/worker/test_outages.py and tests/api/test_resilience.py, which use it.)"""

import os

import pytest

from reportdesk.cache import RedisCache

REDIS = os.environ.get("REDIS_TEST_URL")
pytestmark = pytest.mark.skipif(not REDIS, reason="REDIS_TEST_URL is not set (make test starts Redis and sets it)")


def _cache(location=None):
    return RedisCache(location or REDIS.rsplit("/", 1)[0] + "/7", {"KEY_PREFIX": "cache-test", "OPTIONS": {"socket_connect_timeout": 1}})


def test_every_call_shares_one_client_and_values_round_trip():
    cache = _cache()
    cache.set("throttle", [1.5, 2.5], 30)
    first = cache._cache.get_client(write=True)

    assert cache.get("throttle") == [1.5, 2.5]
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client() is first  # one server: reads and writes share the pool
    cache.delete("throttle")
