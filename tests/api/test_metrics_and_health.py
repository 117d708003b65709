"""GET /api/v1/metrics/ (scoped to the caller's workspaces) and GET /healthz."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import ReportJob

from .conftest import client_for, error_of

pytestmark = pytest.mark.django_db


def test_metrics_cover_the_callers_workspaces_only(make_job, requester, outsider, other_ws):
    make_job("completed")
    make_job("failed")
    from tests.factories import ReportJobFactory

    ReportJobFactory(workspace=other_ws)

    mine = client_for(requester).get("/api/v1/metrics/")
    theirs = client_for(outsider).get("/api/v1/metrics/")

    assert mine.status_code == 200, mine.json()
    body = mine.json()
    assert body["jobs"]["submitted"] == 2
    assert body["jobs"]["by_status"]["completed"] == 1 and body["jobs"]["by_status"]["failed"] == 1
    assert len(body["states_over_time"]) in (30, 31)
    assert theirs.json()["jobs"]["submitted"] == 1


def test_metrics_window_and_workspace(make_job, requester, outsider):
    job = make_job("completed")
    ReportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(days=60))
    client = client_for(requester)
    since = (timezone.now() - dt.timedelta(days=90)).isoformat()

    assert client.get("/api/v1/metrics/", {"since": since}).json()["jobs"]["submitted"] == 1
    assert client.get("/api/v1/metrics/").json()["jobs"]["submitted"] == 0
    assert client.get("/api/v1/metrics/", {"since": since, "workspace": "acme"}).json()["jobs"]["submitted"] == 1

    other = client_for(outsider).get("/api/v1/metrics/", {"workspace": "acme"})
    assert other.status_code == 400 and "workspace" in error_of(other)["fields"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2000-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "last week"},
    ],
)
def test_bad_metrics_windows_are_400(requester, query):
    response = client_for(requester).get("/api/v1/metrics/", query)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"until": "0001-01-05T00:00:00Z"}, "until"),  # the default window would start before year 1
        ({"since": "0001-01-01T00:00:00Z", "until": "0001-01-03T00:00:00Z"}, "since"),
        ({"since": "9999-12-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}, "until"),  # its last day has no next
    ],
)
def test_metrics_windows_at_the_calendars_edges_are_400(requester, query, field):
    client = client_for(requester)
    client.raise_request_exception = False  # the answer a caller gets, a 500 included

    response = client.get("/api/v1/metrics/", query)

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["fields"][field] == "Must be between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z."


def test_metrics_windows_reach_from_1970_to_the_year_9999(requester):
    client = client_for(requester)

    first = client.get("/api/v1/metrics/", {"since": "1970-01-01T00:00:00Z", "until": "1970-01-08T00:00:00Z"})
    last = client.get("/api/v1/metrics/", {"since": "9998-12-25T00:00:00Z", "until": "9999-01-01T00:00:00Z"})

    assert first.status_code == 200 and first.json()["states_over_time"][0]["date"] == "1970-01-01"
    assert last.status_code == 200 and last.json()["states_over_time"][-1]["date"] == "9998-12-31"


def test_healthz_reports_the_database_and_the_broker(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["broker"] == {**body["broker"], "ok": True, "kind": "orm", "queued_tasks": 0}


def test_healthz_says_when_the_broker_is_down_without_failing(db, monkeypatch, caplog):
    """A Redis that refuses connections is reported, not raised (redis-py's own retries are
    off here so the refusal shows at once; with them, the bounded wait below reports it)."""
    import redis
    from django_q.brokers.redis_broker import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    broker = Redis(list_key="reportdesk")
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    broker.connection = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    monkeypatch.setattr("django_q.brokers.get_broker", lambda *args, **kwargs: broker)

    response = Client().get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"]["ok"] is True
    assert body["broker"]["ok"] is False and body["broker"]["kind"] == "redis"
    # its kind for anyone; the message, which may name internal hosts, for the log
    assert body["broker"]["error"] == "ConnectionError (the log has the details)"
    assert "Connection refused" in caplog.text


def test_healthz_says_when_the_broker_hangs(db, monkeypatch):
    import time

    from reportdesk.api import health

    class Hanging:
        def ping(self):
            time.sleep(2)
            return True

    monkeypatch.setattr(health, "BROKER_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr("django_q.brokers.get_broker", lambda *args, **kwargs: Hanging())
    started = time.monotonic()
    response = Client().get("/healthz")
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503 and "no answer" in response.json()["broker"]["error"]


def test_healthz_says_when_the_database_is_down(db, monkeypatch, caplog):
    from reportdesk.api import health

    class BrokenCursor:
        def __enter__(self):
            raise RuntimeError("db down")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: BrokenCursor())
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == {"ok": False, "error": "RuntimeError (the log has the details)"}
    assert "db down" in caplog.text and "db down" not in response.content.decode()
