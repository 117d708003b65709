"""One error shape everywhere — DRF's errors, Django's 404/500 under /api/, throttling — and
never a 500 for bad input."""

import pytest
from django.test import Client

from .conftest import client_for, error_of

pytestmark = pytest.mark.django_db


def test_unknown_api_paths_answer_json_even_with_debug_on(requester, settings):
    settings.DEBUG = True
    client = client_for(requester)
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert "Did you mean" not in error_of(client.get("/api/v1/nothing-here"))["message"]


def test_a_missing_trailing_slash_is_pointed_out_not_redirected(requester):
    response = client_for(requester).post("/api/v1/jobs", {}, format="json")
    assert response.status_code == 404
    assert "Did you mean /api/v1/jobs/" in error_of(response)["message"]


def test_django_level_404_under_api_is_json_and_elsewhere_html(db):
    api = Client().get("/api/v2/jobs/")
    assert api.status_code == 404 and api["Content-Type"] == "application/json"
    assert error_of(api)["code"] == "not_found"
    page = Client().get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_server_fault_under_api_is_json(requester, monkeypatch):
    from rest_framework.test import APIClient

    from reportdesk.api import views

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.JobViewSet, "list", explode)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(requester)
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    assert "boom" not in response.content.decode()


def test_method_not_allowed(requester):
    response = client_for(requester).delete("/api/v1/jobs/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_an_accept_header_never_makes_a_406(requester):
    response = client_for(requester).get("/api/v1/templates/", HTTP_ACCEPT="application/xml")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"


def test_throttling_is_per_user_with_retry_after(requester, reviewer, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "3/minute", "submit": "3/minute"}}
    client = client_for(requester)
    statuses = [client.get("/api/v1/templates/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]

    response = client.get("/api/v1/templates/")
    error = error_of(response)
    assert error["code"] == "throttled" and "available in" in error["message"]
    assert 0 < int(response["Retry-After"]) <= 60
    # Another user has their own allowance.
    assert client_for(reviewer).get("/api/v1/templates/").status_code == 200


def test_submits_have_their_own_tighter_allowance(requester, template, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "100/minute", "submit": "2/minute"}}
    client = client_for(requester)
    body = {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"text": "y"}]}
    statuses = [client.post("/api/v1/jobs/", body, format="json").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert client.get("/api/v1/jobs/").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/jobs/?page=abc", None),
        ("get", "/api/v1/jobs/?page_size=-4", None),
        ("get", "/api/v1/jobs/?template=%00", None),
        ("get", "/api/v1/jobs/?created_after=9999-99-99", None),
        # Python accepts UTC offsets up to ±23:59, PostgreSQL only up to ±15:59.
        ("get", "/api/v1/jobs/?created_before=2026-05-10T07:02:59%2B21:19", None),
        ("get", "/api/v1/jobs/?created_after=0001-01-01T00:00:00%2B14:00", None),
        ("get", "/api/v1/metrics/?since=2026-05-10T07:02:59%2B21:19", None),
        ("get", "/api/v1/jobs/%00/", None),
        ("get", "/api/v1/jobs/" + "a" * 40 + "/", None),
        ("get", "/api/v1/sources/99999999999999999999999/", None),
        ("get", "/api/v1/jobs/abcdefghjk/report/?version=99999999999999999999", None),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"url": "http://[::1"}]}),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"url": "x" * 5000}]}),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "deadline": "0001-01-01T00:00:00+14:00"}),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"text": "y"}], "deadline": "2030-01-01T00:00:00+21:19"}),
        ("post", "/api/v1/jobs/", {"workspace": "a" * 500, "template": "b" * 500, "topic": "t"}),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{"record": "\x00"}]}),
        ("post", "/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "t", "sources": [{}] * 60}),
        ("post", "/api/v1/sources/", {"workspace": "acme", "url": "http://exa mple.com/\x00"}),
    ],
)
def test_bad_input_is_never_a_500(requester, template, method, path, body):
    response = getattr(client_for(requester), method)(path, body, format="json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        error_of(response)


@pytest.mark.parametrize(
    "body",
    [
        '{"decision": "\\ud800"}',
        '{"decision": "approve", "checklist": {"\\udfff": true}}',
        '{"decision": "reject", "comment": "half a pair \\ud83d"}',
    ],
)
def test_unpaired_surrogate_escapes_are_a_400_not_a_crash(make_job, reviewer, body):
    """Such input would be echoed back in an error message, and no UTF-8 response can hold it."""
    job = make_job("needs_review", draft=True)
    response = client_for(reviewer).post(f"/api/v1/jobs/{job.public_id}/review/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
