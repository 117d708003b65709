"""No 500 for any input, nothing refused after it was saved: bodies too deep or not storable
are a 400; a broker or cache that is down does not fail a request; a database that cannot
answer is a 503 with Retry-After; role before state; every filter value validated."""

import pytest
from django.db import OperationalError, connection

from jobs.models import ReportJob
from tests.oncommit import work_callbacks

from .conftest import client_for, error_of

pytestmark = pytest.mark.django_db

SUBMIT = {"workspace": "acme", "template": "brief", "topic": "Battery recycling", "sources": [{"text": "Capacity grew."}]}


# --- Bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"topic": ' + '{"a": ' * 50 + "1" + "}" * 50 + "}",
        '{"workspace": "acme", "template": "brief", "topic": "x\\u0000y", "sources": [{"text": "t"}]}',
        '{"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"text": "\\ud800"}]}',
        '{"workspace": "acme", "\\u0000": 1}',
    ],
    ids=["open-brackets", "balanced-brackets", "nested-objects", "nul", "surrogate", "nul-key"],
)
def test_json_too_deep_or_not_storable_is_a_400(requester, template, body):
    response = client_for(requester).post("/api/v1/jobs/", data=body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert error_of(response)["code"] == "parse_error"
    assert not ReportJob.objects.exists()


def test_json_within_the_depth_limit_still_parses(requester, template):
    response = client_for(requester).post("/api/v1/jobs/", SUBMIT, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("path", ["/api/v1/%0A", "/api/v1/jobs/%0A/x/", "/api/%0Aanything", "/api/v1/x%0D%0Ay"])
def test_an_encoded_newline_in_the_path_gets_the_json_404_even_with_debug_on(requester, settings, path):
    settings.DEBUG = True
    response = client_for(requester).get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert error_of(response)["code"] == "not_found"


# --- Filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["archived=maybe", "archived=yes please", "ordering=password", "ordering=created_at,nope"])
def test_every_filter_value_is_validated(requester, query):
    response = client_for(requester).get(f"/api/v1/jobs/?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


@pytest.mark.parametrize("value, shown", [("true", ["archived"]), ("false", ["live"]), ("1", ["archived"]), ("0", ["live"])])
def test_archived_filters_with_true_and_false(make_job, requester, value, shown):
    from django.utils import timezone

    make_job("completed", topic="archived", archived_at=timezone.now())
    make_job("completed", topic="live")
    response = client_for(requester).get(f"/api/v1/jobs/?archived={value}&ordering=-created_at")
    assert response.status_code == 200
    assert [job["topic"] for job in response.json()["results"]] == shown


# --- Role before state -------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, state, action",
    [
        ("requester", "completed", "expire"),  # requesters never expire, and a completed job cannot be
        ("reviewer", "completed", "cancel"),
        ("reviewer", "failed", "retry"),
        ("requester", "running", "review"),
    ],
)
def test_a_role_without_the_action_is_403_whatever_the_state(make_job, request, who, state, action):
    job = make_job(state, draft=state == "completed")
    user = request.getfixturevalue(who)
    body = {"decision": "approve", "checklist": {}} if action == "review" else {}
    response = client_for(user).post(f"/api/v1/jobs/{job.public_id}/{action}/", body, format="json")
    assert response.status_code == 403, response.json()


def test_a_409_lists_only_what_the_caller_may_do(make_job, requester):
    draft = make_job("needs_review", draft=True)
    response = client_for(requester).post(f"/api/v1/jobs/{draft.public_id}/cancel/", {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["message"].endswith("Allowed now: view_sources.")  # not approve, reject, expire

    own = make_job("completed", draft=True)
    response = client_for(requester).post(f"/api/v1/jobs/{own.public_id}/cancel/", {}, format="json")
    assert response.status_code == 409
    assert error_of(response)["message"].endswith("Allowed now: open, export, archive.")


def test_the_review_queue_refuses_requesters(requester, reviewer, operator):
    response = client_for(requester).get("/api/v1/reviews/queue/")
    assert response.status_code == 403
    assert "reviewers and operators" in error_of(response)["message"]
    assert client_for(reviewer).get("/api/v1/reviews/queue/").status_code == 200
    assert client_for(operator).get("/api/v1/reviews/queue/").status_code == 200


# --- Outages -----------------------------------------------------------------------------

UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


@pytest.fixture
def redis_down(monkeypatch):
    """The broker and the cache are a Redis that refuses connections."""
    from django.test import override_settings
    from django_q.conf import Conf

    cache = {
        "BACKEND": "reportdesk.cache.RedisCache",
        "LOCATION": UNREACHABLE_REDIS,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", UNREACHABLE_REDIS + "?socket_connect_timeout=1")
    with override_settings(CACHES={"default": cache}):
        yield


def test_with_redis_down_a_submit_returns_the_job_and_reads_keep_working(requester, template, redis_down, django_capture_on_commit_callbacks, caplog):
    client = client_for(requester)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/api/v1/jobs/", SUBMIT, format="json")
    assert response.status_code == 201, response.content
    assert len(work_callbacks(callbacks)) == 1  # the enqueue was tried, failed, and was logged
    assert "could not enqueue" in caplog.text
    job = ReportJob.objects.get(public_id=response.json()["id"])
    assert job.status == "queued" and job.next_check_at is not None  # due: the dispatcher takes it

    assert client.get("/api/v1/jobs/").status_code == 200
    assert client.get(f"/api/v1/jobs/{job.public_id}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/v1/jobs/{job.public_id}/cancel/", {}, format="json").status_code == 200


def test_a_database_that_cannot_answer_is_a_503_with_retry_after(requester):
    client = client_for(requester)

    def down(execute, sql, params, many, context):
        raise OperationalError("the database system is shutting down")

    with connection.execute_wrapper(down):
        response = client.get("/api/v1/jobs/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert error_of(response)["code"] == "unavailable"
