"""GET /healthz: liveness and readiness for load balancers and operators.

200 when the database answers and the task broker (django-q2: the ORM broker's queue table,
or Redis) answers; 503 with the failing part named otherwise. It never raises: a broken
database or a Redis that is down is the answer, not a 500. Unauthenticated; says nothing
beyond what is up, how full the queue is and when the dispatcher last beat: a failure is
named by its kind, its message is logged.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_SECONDS = 3.0
log = logging.getLogger(__name__)


def _short(exc: Exception, *, part: str) -> str:
    """What anyone may read of a failure: its kind. The message (host names, users, addresses
    of the database or broker) goes to the log, for operators."""
    log.warning("healthz: the %s failed: %s: %s", part, type(exc).__name__, exc)
    return f"{type(exc).__name__} (the log has the details)"


def _check_database() -> dict:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": _short(exc, part="database")}
    return {"ok": True, "vendor": connection.vendor, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def _broker_probe(broker) -> int:
    if broker.ping() is False:
        raise ConnectionError("the broker did not answer the ping")
    # The ORM broker's ping() is always True; reading the queue is what proves it works.
    return broker.queue_size()


def _check_broker() -> dict:
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM

    started = time.monotonic()
    try:
        broker = get_broker()
        if isinstance(broker, ORM):
            size = _broker_probe(broker)
        else:
            # A network broker may hang rather than fail: bound the wait.
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            try:
                size = pool.submit(_broker_probe, broker).result(timeout=BROKER_TIMEOUT_SECONDS)
            except concurrent.futures.TimeoutError:
                return {"ok": False, "kind": _kind_of(broker), "error": f"no answer within {BROKER_TIMEOUT_SECONDS:g} s"}
            finally:
                pool.shutdown(wait=False)
    except Exception as exc:
        return {"ok": False, "kind": _kind_of(locals().get("broker")), "error": _short(exc, part="broker")}
    return {
        "ok": True,
        "kind": _kind_of(broker),
        "queued_tasks": size,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
    }


def _kind_of(broker) -> str:
    if broker is None:
        return "unknown"
    from django_q.brokers.orm import ORM

    return "orm" if isinstance(broker, ORM) else type(broker).__name__.lower()


def _dispatcher_last_seen() -> str | None:
    from jobs.worker.lease import heartbeat_last_seen

    try:
        seen = heartbeat_last_seen()
    except Exception:
        return None
    return seen.isoformat() if seen else None


@never_cache
@require_GET
def healthz(request):
    database = _check_database()
    broker = _check_broker()
    healthy = database["ok"] and broker["ok"]
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": database,
        "broker": broker,
        # Informational: workers may run elsewhere, so a silent dispatcher does not fail the check.
        "dispatcher_last_seen": _dispatcher_last_seen() if database["ok"] else None,
    }
    return JsonResponse(body, status=200 if healthy else 503)
