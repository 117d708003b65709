"""The API throttles' cell rate (reportdesk.api.throttling): a burst up to the allowance, then
the rate; an exact wait; one small value per key whatever the rate; and, on Redis, one atomic
step that many processes share."""

import os
import threading

import pytest
from django.core.cache.backends.locmem import LocMemCache

from reportdesk.api.throttling import take
from reportdesk.cache import RedisCache

REDIS = os.environ.get("REDIS_TEST_URL")


def _locmem():
    cache = LocMemCache("throttle-test", {})
    cache.clear()
    return cache


def _redis():
    if not REDIS:
        pytest.skip("REDIS_TEST_URL is not set (make test starts Redis and sets it)")
    cache = RedisCache(REDIS.rsplit("/", 1)[0] + "/7", {"KEY_PREFIX": "throttle-test"})
    cache.clear()
    return cache


@pytest.fixture(params=["locmem", "redis"])
def cache(request):
    return _locmem() if request.param == "locmem" else _redis()


def _steps(cache, times, *, rate=3, period=60.0, key="k"):
    return [take(cache, key, now=now, interval=period / rate, period=period) for now in times]


def test_a_burst_up_to_the_allowance_then_an_exact_wait(cache):
    assert _steps(cache, [1000.0] * 4) == [0, 0, 0, pytest.approx(20.0)]
    # Refused requests spend nothing: the wait does not grow while a client retries.
    assert _steps(cache, [1010.0]) == [pytest.approx(10.0)]
    # After the wait one request is allowed, and the next one waits a whole interval again.
    assert _steps(cache, [1020.0, 1020.0]) == [0, pytest.approx(20.0)]


def test_the_allowance_refills_at_the_rate(cache):
    assert _steps(cache, [0.0, 0.0, 0.0]) == [0, 0, 0]
    # 3/minute: one request every 20 s, however long the client goes on.
    assert _steps(cache, [20.0, 21.0, 40.0, 60.0, 61.0]) == [0, pytest.approx(19.0), 0, 0, pytest.approx(19.0)]
    # A quiet minute gives the whole burst back, not more.
    assert _steps(cache, [200.0] * 4) == [0, 0, 0, pytest.approx(20.0)]


def test_keys_are_independent(cache):
    assert _steps(cache, [5.0] * 3, key="alice") == [0, 0, 0]
    assert _steps(cache, [5.0], key="bob") == [0]


def test_an_allowance_that_does_not_divide_evenly_is_whole(cache):
    # 60/7 seconds added up seven times is a hair above 60: the seventh is still allowed.
    assert _steps(cache, [7.0] * 8, rate=7) == [0] * 7 + [pytest.approx(60 / 7)]


def test_the_stored_value_stays_one_number_at_high_rates(cache):
    steps = _steps(cache, [50.0 + i / 1000 for i in range(2000)], rate=1_000_000)
    assert steps == [0] * 2000
    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        stored = client.get(cache.make_and_validate_key("k"))
        assert len(stored) < 24 and client.pttl(cache.make_and_validate_key("k")) > 0
    else:
        assert isinstance(cache.get("k"), float)


def test_on_redis_concurrent_processes_never_overspend():
    """Eight clients of their own (as eight web processes would be) spend one allowance of
    50 at the same moment: exactly 50 requests go through."""
    _redis()
    allowed = []
    start = threading.Barrier(8)

    def client():
        own = RedisCache(REDIS.rsplit("/", 1)[0] + "/7", {"KEY_PREFIX": "throttle-test"})
        start.wait()
        allowed.extend(step == 0 for step in _steps(own, [500.0] * 20, rate=50, key="shared"))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 50 and len(allowed) == 160


def test_a_value_that_is_not_a_number_counts_as_a_whole_allowance(cache):
    """A key holding something else (a list of times, as DRF's own throttles keep) is read as
    an allowance that is whole, not as an error that would let every request through."""
    if isinstance(cache, RedisCache):
        cache._cache.get_client(write=True).set(cache.make_and_validate_key("k"), b"\x80\x05not a number")
    else:
        cache.set("k", [1.0, 2.0], 60)
    assert _steps(cache, [10.0] * 4) == [0, 0, 0, pytest.approx(20.0)]


def test_without_a_time_given_the_cache_keeps_the_clock(cache):
    """The throttles give no time: on Redis the server's clock, which every web host shares,
    decides; elsewhere this host's."""
    steps = [take(cache, "k", interval=20.0, period=60.0) for _ in range(4)]
    assert steps[:3] == [0, 0, 0] and steps[3] == pytest.approx(20.0, abs=1.0)


@pytest.mark.django_db
def test_the_api_throttles_take_the_atomic_step_on_redis(requester, settings):
    """Through the throttle classes and Django's cache (a proxy, not the backend itself), a
    request on Redis is the script's one atomic step, which stores the time as plain text; the
    per-process fallback would have stored a pickle, read and written in two calls."""
    from django.core.cache import cache as default_cache
    from django.test import override_settings

    from tests.api.conftest import client_for

    if not REDIS:
        pytest.skip("REDIS_TEST_URL is not set (make test starts Redis and sets it)")
    backend = {"BACKEND": "reportdesk.cache.RedisCache", "LOCATION": REDIS.rsplit("/", 1)[0] + "/7", "KEY_PREFIX": "throttle-api"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "3/minute", "submit": "3/minute"}}
    with override_settings(CACHES={"default": backend}):
        default_cache.clear()
        client = client_for(requester)
        assert [client.get("/api/v1/templates/").status_code for _ in range(4)] == [200, 200, 200, 429]
        stored = default_cache._cache.get_client().get(default_cache.make_and_validate_key(f"throttle_cell_user_{requester.pk}"))
        assert float(stored) > 0
        default_cache.clear()


def test_on_redis_the_time_is_the_servers_not_this_hosts(monkeypatch):
    """Web hosts whose clocks disagree share one allowance: the script reads Redis's clock."""
    import time

    cache = _redis()
    seconds, microseconds = cache._cache.get_client().time()
    before = seconds + microseconds / 1e6
    monkeypatch.setattr(time, "time", lambda: 1000.0)  # this host's clock, far off
    steps = [take(cache, "k", interval=20.0, period=60.0) for _ in range(4)]
    monkeypatch.undo()
    stored = float(cache._cache.get_client().get(cache.make_and_validate_key("k")))
    assert steps[:3] == [0, 0, 0] and steps[3] == pytest.approx(20.0, abs=1.0)
    assert stored == pytest.approx(before + 60.0, abs=2.0)


@pytest.mark.django_db
@pytest.mark.parametrize("rate", ["0/minute", "-5/minute"])
def test_a_rate_of_nothing_refuses_every_request(requester, settings, rate):
    """Zero, or a negative count by mistake, refuses rather than lets everything through."""
    from tests.api.conftest import client_for

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": rate, "submit": rate}}
    response = client_for(requester).get("/api/v1/templates/")
    assert response.status_code == 429 and response["Retry-After"] == "60"
