"""Password sign-in: turned off for everyone but break-glass superusers when SSO is the way in;
throttled always (the browser test shows the lockout)."""

import pytest
from django.contrib.auth import authenticate
from django.test import RequestFactory

from reportdesk.models import Role
from tests.factories import UserFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests"


def sign_in(client, username):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": PASSWORD})


def test_with_password_login_off_only_a_superuser_gets_in(client, settings):
    settings.PASSWORD_LOGIN = False
    workspace = WorkspaceFactory(slug="research-ops")
    member(workspace, Role.OPERATOR, username="oscar")
    UserFactory(username="root", is_superuser=True)

    page = client.get("/admin/login/")
    assert b"Password sign-in is kept for break-glass administrators only." in page.content

    refused = sign_in(client, "oscar")
    assert refused.status_code == 200 and b"Please enter the correct username and password" in refused.content
    assert client.get("/admin/").status_code == 302

    assert sign_in(client, "root")["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_with_password_login_on_everyone_with_a_password_gets_in(client):
    workspace = WorkspaceFactory(slug="research-ops")
    member(workspace, Role.OPERATOR, username="oscar")
    assert b"break-glass" not in client.get("/admin/login/").content
    assert sign_in(client, "oscar")["Location"] == "/admin/"


def test_shell_callers_without_a_request_still_authenticate():
    """Management commands call authenticate() without a request; the lockout check applies to
    sign-ins over HTTP only."""
    user = UserFactory(username="rita")
    assert authenticate(username="rita", password=PASSWORD) == user
    assert authenticate(RequestFactory().post("/admin/login/"), username="rita", password=PASSWORD) == user
