"""Who may do what: other workspaces' objects do not exist for you (404, never 403); a role
without an action is a 403 that says what is missing; no credentials is a 401."""

import pytest
from django.utils import timezone

from jobs.models import JobEvent, ReportJob
from reportdesk.models import Role
from tests.factories import SourceItemFactory, member

from .conftest import approval, client_for, error_of

pytestmark = pytest.mark.django_db

# Every endpoint that names an object, with a body that would be accepted, and the state in
# which the action is allowed (so that only scoping can explain a refusal).
OBJECT_ENDPOINTS = [
    ("get", "/api/v1/jobs/{id}/", None, "queued"),
    ("patch", "/api/v1/jobs/{id}/", {"topic": "Hijacked"}, "queued"),
    ("post", "/api/v1/jobs/{id}/cancel/", {}, "queued"),
    ("post", "/api/v1/jobs/{id}/expire/", {}, "running"),
    ("post", "/api/v1/jobs/{id}/retry/", {}, "failed"),
    ("post", "/api/v1/jobs/{id}/revise/", {"instructions": "More."}, "failed"),
    ("post", "/api/v1/jobs/{id}/rerun/", {}, "canceled"),
    ("post", "/api/v1/jobs/{id}/archive/", {}, "completed"),
    ("post", "/api/v1/jobs/{id}/unarchive/", {}, "archived"),
    ("post", "/api/v1/jobs/{id}/review/", approval(), "needs_review"),
    ("post", "/api/v1/jobs/{id}/claim/", {}, "needs_review"),
    ("post", "/api/v1/jobs/{id}/release/", {}, "needs_review"),
    ("get", "/api/v1/jobs/{id}/events/", None, "completed"),
    ("get", "/api/v1/jobs/{id}/report/?format=md", None, "completed"),
    ("get", "/api/v1/jobs/{id}/report/?format=json", None, "completed"),
]


def _job(make_job, state, **kwargs):
    if state == "archived":
        return make_job("completed", draft=True, archived_at=timezone.now(), **kwargs)
    return make_job(state, draft=state in ("completed", "needs_review"), **kwargs)


@pytest.mark.parametrize(("method", "path", "body", "state"), OBJECT_ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in OBJECT_ENDPOINTS])
def test_another_workspaces_job_is_404_on_every_endpoint(make_job, outsider, method, path, body, state):
    job = _job(make_job, state)
    before = JobEvent.objects.filter(job=job).count()

    response = getattr(client_for(outsider), method)(path.format(id=job.public_id), body, format="json")

    assert response.status_code == 404, response.content
    error = error_of(response)
    assert error["code"] == "not_found" and job.public_id in error["message"]
    # Nothing happened, and nothing was recorded.
    assert JobEvent.objects.filter(job=job).count() == before
    assert ReportJob.objects.get(pk=job.pk).status == ("completed" if state == "archived" else state)


def test_a_404_for_someone_elses_job_reads_like_one_that_does_not_exist(make_job, outsider):
    job = make_job()
    theirs = client_for(outsider).get(f"/api/v1/jobs/{job.public_id}/")
    nobodys = client_for(outsider).get("/api/v1/jobs/zzzzzzzzzz/")
    assert theirs.status_code == nobodys.status_code == 404
    assert error_of(theirs)["message"].replace(job.public_id, "X") == error_of(nobodys)["message"].replace("zzzzzzzzzz", "X")


def test_another_workspaces_things_are_not_listed(make_job, outsider, ws):
    make_job("queued")
    make_job("needs_review", draft=True)
    client = client_for(outsider)
    assert client.get("/api/v1/jobs/").json()["count"] == 0
    assert client.get("/api/v1/jobs/?workspace=acme").json()["count"] == 0
    assert client.get("/api/v1/reviews/queue/").json()["count"] == 0


def test_another_workspaces_source_is_404_and_cannot_be_used(ws, outsider, other_ws, template):
    item = SourceItemFactory(workspace=ws)
    client = client_for(outsider)
    response = client.get(f"/api/v1/sources/{item.pk}/")
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"

    member(other_ws, Role.REQUESTER, "otto")
    body = {"workspace": "globex", "template": template.slug, "topic": "Borrowed sources", "sources": [item.pk]}
    used = client.post("/api/v1/jobs/", body, format="json")
    assert used.status_code == 400
    assert error_of(used)["fields"] == {"sources": {"0": "Unknown source id."}}


def test_another_workspace_cannot_be_written_to(outsider, template):
    client = client_for(outsider)
    job = client.post("/api/v1/jobs/", {"workspace": "acme", "template": template.slug, "topic": "x", "sources": [{"text": "y"}]}, format="json")
    source = client.post("/api/v1/sources/", {"workspace": "acme", "text": "Planted."}, format="json")
    nowhere = client.post("/api/v1/sources/", {"workspace": "no-such-ws", "text": "Planted."}, format="json")
    for response in (job, source, nowhere):
        assert response.status_code == 400
        assert "no workspace" in error_of(response)["fields"]["workspace"]
    # A workspace you do not belong to reads exactly like one that does not exist.
    assert error_of(source)["fields"]["workspace"].replace("acme", "X") == error_of(nowhere)["fields"]["workspace"].replace("no-such-ws", "X")


# Every action tried by a role without it, in a state that allows it: (role, action, state).
# "requester*" is a requester who did not request the job (requesters act on their own only).
ROLE_REFUSALS = [
    ("reviewer", "patch", "queued", "edit"),
    ("requester*", "patch", "queued", "edit"),
    ("reviewer", "cancel", "queued", "cancel"),
    ("reviewer", "cancel", "canceled", "cancel"),  # whatever the state: not "nothing to do"
    ("requester", "expire", "expired", "expire"),
    ("requester*", "cancel", "queued", "cancel"),
    ("requester", "expire", "running", "expire"),
    ("reviewer", "expire", "running", "expire"),
    ("reviewer", "retry", "failed", "retry"),
    ("requester*", "retry", "failed", "retry"),
    ("reviewer", "revise", "failed", "revise"),
    ("requester*", "revise", "rejected", "revise"),
    ("reviewer", "rerun", "canceled", "rerun"),
    ("requester*", "rerun", "expired", "rerun"),
    ("reviewer", "archive", "completed", "archive"),
    ("requester*", "archive", "completed", "archive"),
    ("reviewer", "unarchive", "archived", "unarchive"),
    ("requester*", "unarchive", "archived", "unarchive"),
    ("requester", "review", "needs_review", "own report"),
    ("requester*", "review", "needs_review", "approve"),
    ("requester", "claim", "needs_review", "own report"),
]
BODIES = {"revise": {"instructions": "More."}, "review": approval(), "patch": {"topic": "Changed"}}


@pytest.mark.parametrize(("role", "action", "state", "named"), ROLE_REFUSALS, ids=[f"{r}-{a}-{s}" for r, a, s, _ in ROLE_REFUSALS])
def test_every_action_tried_by_a_role_without_it_is_403(make_job, ws, requester, reviewer, role, action, state, named):
    job = _job(make_job, state)
    user = {"reviewer": reviewer, "requester": requester, "requester*": member(ws, Role.REQUESTER, "ruth")}[role]
    client = client_for(user)
    before = JobEvent.objects.filter(job=job).count()

    if action == "patch":
        response = client.patch(f"/api/v1/jobs/{job.public_id}/", BODIES["patch"], format="json")
    else:
        response = client.post(f"/api/v1/jobs/{job.public_id}/{action}/", BODIES.get(action, {}), format="json")

    assert response.status_code == 403, response.json()
    error = error_of(response)
    assert error["code"] == "permission_denied"
    message = error["message"]
    if named == "own report":
        assert message == "You requested this report, so someone else must review it."
    elif role == "requester*":
        assert f"Requesters may {named} only their own jobs" in message or "does not include" in message
    else:
        assert f"Your role ({role}) does not include the '{named}' action" in message
    assert JobEvent.objects.filter(job=job).count() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "x", "sources": [{"text": "y"}]}),
        ("/api/v1/sources/", {"workspace": "acme", "text": "Some notes."}),
    ],
)
def test_a_reviewer_cannot_create_work(reviewer, template, path, body):
    response = client_for(reviewer).post(path, body, format="json")
    assert response.status_code == 403
    assert "needs the requester or operator role" in error_of(response)["message"]


@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs/", "/api/v1/templates/", "/api/v1/reviews/queue/", "/api/v1/jobs/abc/", "/api/v1/sources/1/"],
)
def test_no_credentials_is_401(path):
    from rest_framework.test import APIClient

    response = APIClient().get(path)
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 401 and error_of(response)["code"] == "authentication_failed"


def test_session_auth_works_and_needs_csrf_for_writes(make_job, requester):
    from rest_framework.test import APIClient

    job = make_job("queued")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(requester)
    assert client.get(f"/api/v1/jobs/{job.public_id}/").status_code == 200
    refused = client.post(f"/api/v1/jobs/{job.public_id}/cancel/", {}, format="json")
    assert refused.status_code == 403 and "CSRF" in error_of(refused)["message"]


def test_a_superuser_sees_every_workspace(make_job, django_user_model):
    job = make_job()
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    detail = client_for(admin).get(f"/api/v1/jobs/{job.public_id}/")
    assert detail.status_code == 200 and detail.json()["workspace"] == job.workspace.slug
    # A member's workspaces come with the memberships; a superuser's are read for the page.
    listed = client_for(admin).get("/api/v1/jobs/").json()["results"]
    assert [(row["id"], row["workspace"]) for row in listed] == [(job.public_id, job.workspace.slug)]
