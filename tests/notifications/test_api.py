"""/api/v1/webhook-endpoints/: operators only, scoped to their workspaces (others' are 404),
the secret shown once, bad input a 400 in the API's error shape, a fixed query budget."""

from __future__ import annotations

import base64

import pytest
from django.core.cache import cache
from django.utils import timezone

from notifications.models import EndpointDelivery, WebhookEndpoint
from notifications.signing import secret_new
from reportdesk.models import Role
from tests.api.conftest import client_for, error_of
from tests.factories import ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhook-endpoints/"


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def outsider(other_ws):
    """An operator, of another workspace."""
    return member(other_ws, Role.OPERATOR, "oscar")


def endpoint_in(workspace, url="https://hooks.example.com/reportdesk", **kwargs) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(workspace=workspace, url=url, events=["*"], secret=secret_new(), **kwargs)


def test_an_operator_registers_an_endpoint_and_sees_its_secret_once(operator):
    client = client_for(operator)

    response = client.post(URL, {"workspace": "acme", "url": "https://hooks.example.com/in", "events": ["job.completed", "job.failed"],
                                 "description": "CRM sync"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert (body["workspace"], body["url"], body["events"], body["is_active"]) == ("acme", "https://hooks.example.com/in", ["job.completed", "job.failed"], True)
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]

    shown = client.get(f"{URL}{body['id']}/").json()
    listed = client.get(URL).json()["results"]
    assert "secret" not in shown and all("secret" not in e for e in listed)
    assert body["secret"] not in str(shown) + str(listed)


@pytest.mark.parametrize("who", ["requester", "reviewer"])
def test_other_roles_are_refused_with_403(request, who, ws):
    endpoint = endpoint_in(ws)
    client = client_for(request.getfixturevalue(who))

    for response in [
        client.get(URL),
        client.post(URL, {"workspace": "acme", "url": "https://hooks.example.com/in", "events": ["*"]}, format="json"),
        client.get(f"{URL}{endpoint.pk}/"),
        client.delete(f"{URL}{endpoint.pk}/"),
    ]:
        assert response.status_code == 403
        assert error_of(response)["code"] == "permission_denied"
    assert WebhookEndpoint.objects.count() == 1


def test_an_operator_of_one_workspace_who_only_reviews_in_another_may_not_register_there(operator, other_ws):
    member_of_both = operator
    from reportdesk.services import membership_set

    membership_set(workspace=other_ws, user=member_of_both, role=Role.REVIEWER)

    response = client_for(member_of_both).post(URL, {"workspace": "globex", "url": "https://hooks.example.com/in", "events": ["*"]}, format="json")

    assert response.status_code == 403 and error_of(response)["code"] == "permission_denied"


def test_other_workspaces_endpoints_are_404(outsider, ws, operator):
    endpoint = endpoint_in(ws)
    client = client_for(outsider)

    assert client.get(URL).json()["results"] == []
    for response in [
        client.get(f"{URL}{endpoint.pk}/"),
        client.patch(f"{URL}{endpoint.pk}/", {"is_active": False}, format="json"),
        client.delete(f"{URL}{endpoint.pk}/"),
        client.get(f"{URL}{endpoint.pk}/deliveries/"),
    ]:
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    endpoint.refresh_from_db()
    assert endpoint.is_active

    response = client.post(URL, {"workspace": "acme", "url": "https://hooks.example.com/in", "events": ["*"]}, format="json")
    assert response.status_code == 400 and "workspace" in error_of(response)["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://10.0.0.8/hooks", "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:9000/", "events": ["*"]}, "url"),
        ({"url": "https://xn--zz-.example/", "events": ["*"]}, "url"),
        ({"url": "http://localhost/hooks", "events": ["*"]}, "url"),
        ({"url": "ftp://hooks.example.com/", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "", "events": ["*"]}, "url"),
        ({"url": 42, "events": ["*"]}, "url"),
        ({"events": ["*"]}, "url"),
        ({"url": "https://hooks.example.com/", "events": []}, "events"),
        ({"url": "https://hooks.example.com/", "events": ["job.exploded"]}, "events"),
        ({"url": "https://hooks.example.com/", "events": "*"}, "events"),
        ({"url": "https://hooks.example.com/"}, "events"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(operator, body, field):
    response = client_for(operator).post(URL, {"workspace": "acme", **body}, format="json")

    assert response.status_code == 400, response.json()
    error = error_of(response)
    assert error["code"] == "invalid" and field in error["fields"]
    assert WebhookEndpoint.objects.count() == 0


def test_patch_changes_an_endpoint_and_enabling_clears_its_failures(operator, ws):
    endpoint = endpoint_in(ws, is_active=False, consecutive_failures=15, disabled_at=timezone.now(), disabled_reason="15 failures")
    client = client_for(operator)

    response = client.patch(f"{URL}{endpoint.pk}/", {"is_active": True, "events": ["job.needs_review"]}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["is_active"], body["consecutive_failures"], body["disabled_at"], body["events"]) == (True, 0, None, ["job.needs_review"])
    bad = client.patch(f"{URL}{endpoint.pk}/", {"url": "http://192.168.1.1/"}, format="json")
    assert bad.status_code == 400 and "url" in error_of(bad)["fields"]
    assert client.patch(f"{URL}{endpoint.pk}/", {"is_active": "yes"}, format="json").status_code == 400


def test_delete_removes_the_endpoint(operator, ws):
    endpoint = endpoint_in(ws)
    client = client_for(operator)

    assert client.delete(f"{URL}{endpoint.pk}/").status_code == 204
    assert client.get(f"{URL}{endpoint.pk}/").status_code == 404


def test_the_delivery_log_lists_status_code_and_time(operator, ws, requester):
    endpoint = endpoint_in(ws)
    job = ReportJobFactory(workspace=ws, requested_by=requester)
    EndpointDelivery.objects.create(
        endpoint=endpoint, job=job, event_type="job.failed", msg_id="msg_abc", payload="{}", status="failed",
        attempts=3, last_status_code=500, last_error="The endpoint answered HTTP 500.", last_attempt_at=timezone.now(),
    )

    response = client_for(operator).get(f"{URL}{endpoint.pk}/deliveries/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["id"], row["event_type"], row["job"], row["status"], row["attempts"], row["last_status_code"]) == (
        "msg_abc", "job.failed", job.public_id, "failed", 3, 500,
    )
    assert row["last_attempt_at"]


def test_unauthenticated_is_401():
    from rest_framework.test import APIClient

    response = APIClient().get(URL)
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"


@pytest.mark.parametrize("count", [1, 6])
def test_lists_cost_a_fixed_number_of_queries(count, operator, ws, requester, django_assert_num_queries):
    client = client_for(operator)
    endpoints = [endpoint_in(ws, url=f"https://hooks.example.com/{n}") for n in range(count)]
    for n in range(count):
        job = ReportJobFactory(workspace=ws, requested_by=requester)
        EndpointDelivery.objects.create(endpoint=endpoints[0], job=job, event_type="job.failed", msg_id=f"msg_{n}", payload="{}")

    # token, memberships; then count and page (list) or endpoint, count and page (deliveries)
    with django_assert_num_queries(4):
        assert len(client.get(URL).json()["results"]) == count
    with django_assert_num_queries(5):
        assert len(client.get(f"{URL}{endpoints[0].pk}/deliveries/").json()["results"]) == count


def test_the_openapi_document_has_the_contracts_paths():
    document = client_for(member(WorkspaceFactory(slug="docs"), Role.REQUESTER, "dora")).get("/api/v1/schema/?format=json").json()
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/webhook-endpoints/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/webhook-endpoints/{id}/"])
    assert "get" in paths["/api/v1/webhook-endpoints/{id}/deliveries/"]
    assert "secret" in document["components"]["schemas"]["WebhookEndpointCreatedOut"]["properties"]
    assert "secret" not in document["components"]["schemas"]["WebhookEndpointOut"]["properties"]


def test_every_change_of_an_endpoint_is_on_the_record_by_host(operator, ws):
    from django.contrib.admin.models import LogEntry

    client = client_for(operator)
    endpoint_id = client.post(URL, {"workspace": "acme", "url": "https://hooks.example.com/a/t0ken", "events": ["*"]}, format="json").json()["id"]
    client.patch(f"{URL}{endpoint_id}/", {"url": "https://collector.example.net/b/t0ken"}, format="json")
    client.patch(f"{URL}{endpoint_id}/", {"description": "Same URL"}, format="json")
    client.delete(f"{URL}{endpoint_id}/")

    entries = list(LogEntry.objects.filter(object_id=str(endpoint_id)).order_by("id"))
    assert [(e.user, e.action_flag) for e in entries] == [(operator, 1), (operator, 2), (operator, 2), (operator, 3)]
    assert "hooks.example.com → collector.example.net" in entries[1].change_message
    assert not any("t0ken" in e.change_message + e.object_repr for e in entries)
