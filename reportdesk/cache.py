"""Django's Redis cache backend, keeping one Redis client per connection pool, and the
API throttles' atomic step.

Django's own backend builds a new `redis.Redis` for every cache call, and each one builds its
table of about 200 response callbacks, a measurable share of a small request. A client is safe
to share between threads (every command takes a connection from the pool), so one per pool is
enough.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusedClients(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


# One step of a generic cell rate (reportdesk.api.throttling.take), read and written in one
# atomic call. KEYS[1] holds when the allowance is whole again; ARGV: now (empty: Redis's own
# clock, the one every web host shares), interval, period and the slack, in seconds. Answers
# "0" (allowed) or the seconds to wait.
_RATE_TAKE = """
local now = tonumber(ARGV[1])
if not now then
    local time = redis.call('TIME')
    now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
local whole_at = math.max(tonumber(redis.call('GET', KEYS[1]) or 0) or 0, now) + tonumber(ARGV[2])
local ahead = whole_at - now
if ahead > tonumber(ARGV[3]) + tonumber(ARGV[4]) then
    return string.format('%.6f', ahead - tonumber(ARGV[3]))
end
redis.call('SET', KEYS[1], string.format('%.6f', whole_at), 'PX', math.ceil(ahead * 1000) + 1000)
return '0'
"""


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClients
        self._scripts = {}

    def rate_take(self, key: str, *, now: float | None, interval: float, period: float, slack: float) -> float:
        """One request off `key`'s allowance, atomically for every process: 0 when allowed,
        else the seconds until a request would be. `now` None: by Redis's clock."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts.setdefault(id(client), client.register_script(_RATE_TAKE))
        return float(script(keys=[key], args=["" if now is None else repr(now), repr(interval), repr(period), repr(slack)], client=client))
