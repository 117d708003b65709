"""Single sign-on end to end against a real OpenID Connect provider on loopback: the browser's
part is played by Django's test client on reportdesk's side and an HTTP client on the
provider's; reportdesk's server-side calls (token, userinfo, keys) go over real HTTP."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from reportdesk.models import Membership, Role
from tests.factories import ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db
User = get_user_model()


def sign_in_with_sso(client, idp, *, sub: str):
    """Start at reportdesk's sign-in button, sign in at the provider as `sub`, come back.
    Returns reportdesk's answer to the callback."""
    start = client.get("/oidc/authenticate/?next=/admin/")
    assert start.status_code == 302
    authorize_url = start["Location"]
    assert authorize_url.startswith(idp.discovery["authorization_endpoint"])
    back = urlsplit(idp.sign_in(authorize_url, sub=sub))
    assert (back.scheme, back.netloc, back.path) == ("http", "testserver", "/oidc/callback/")
    return client.get(f"{back.path}?{back.query}")


def roles(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("workspace__slug", "role"))


def test_first_sign_in_creates_the_user_with_the_role_their_groups_give(client, sso):
    WorkspaceFactory(slug="research-ops")
    sso.user("alice-sub", email="alice@corp.example", preferred_username="alice", given_name="Alice", groups=["research-analysts", "all-staff"])

    # the sign-in page offers single sign-on
    login_page = client.get("/admin/login/")
    assert b"Sign in with Corp SSO" in login_page.content

    landed = sign_in_with_sso(client, sso, sub="alice-sub")

    assert landed.status_code == 302 and landed["Location"] == "/admin/"
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.is_staff, alice.has_usable_password()) == ("alice@corp.example", "Alice", True, False)
    assert roles(alice) == {"research-ops": Role.REQUESTER}
    assert list(alice.groups.values_list("name", flat=True)) == ["requester"]
    # and she is in the console
    console = client.get("/admin/")
    assert console.status_code == 200 and b"Alice" in console.content and b"Operations console" in console.content


def test_roles_follow_the_groups_on_every_sign_in(client, sso):
    workspace = WorkspaceFactory(slug="research-ops")
    other = WorkspaceFactory(slug="legal")
    sso.user("bob-sub", email="bob@corp.example", preferred_username="bob", groups=["research-analysts", "research-leads"])
    sign_in_with_sso(client, sso, sub="bob-sub")
    bob = User.objects.get(username="bob")
    assert roles(bob) == {"research-ops": Role.OPERATOR}  # the strongest role wins

    # an operator added bob to a workspace the map does not name: SSO leaves that alone
    member_of_other = member(other, Role.REVIEWER, username="bob")
    assert member_of_other == bob

    # the identity provider moves bob to the reviewers
    sso.user("bob-sub", email="bob@corp.example", preferred_username="bob", groups=["reviewers"])
    client.logout()
    sign_in_with_sso(client, sso, sub="bob-sub")
    assert roles(bob) == {"research-ops": Role.REVIEWER, "legal": Role.REVIEWER}
    assert User.objects.filter(email="bob@corp.example").count() == 1
    assert workspace.memberships.get(user=bob).role == Role.REVIEWER


def test_a_person_no_group_maps_is_refused_and_told_why(client, sso):
    WorkspaceFactory(slug="research-ops")
    sso.user("mallory-sub", email="mallory@corp.example", preferred_username="mallory", groups=["marketing"])

    landed = sign_in_with_sso(client, sso, sub="mallory-sub")

    assert landed.status_code == 302 and landed["Location"] == "/sso/refused/"
    page = client.get("/sso/refused/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "None of your groups gives access to a reportdesk workspace." in text
    assert "mallory@corp.example" in text and "marketing" in text
    assert not User.objects.filter(email="mallory@corp.example").exists()
    assert client.get("/admin/").status_code == 302  # not signed in


@pytest.mark.parametrize("verified", [False, "false", "False"])
def test_an_email_the_provider_has_not_verified_signs_no_one_in(client, sso, verified):
    from tests.factories import UserFactory

    WorkspaceFactory(slug="research-ops")
    alice = UserFactory(username="alice", email="alice@corp.example")
    sso.user("eve-sub", email="alice@corp.example", email_verified=verified, preferred_username="eve", groups=["research-leads"])

    assert sign_in_with_sso(client, sso, sub="eve-sub")["Location"] == "/sso/refused/"
    assert "has not verified your email address" in client.get("/sso/refused/").content.decode()
    assert "_auth_user_id" not in client.session and roles(alice) == {}
    assert not User.objects.filter(username="eve").exists()


def test_a_person_who_loses_their_groups_is_refused_next_time_and_loses_the_roles_they_gave(client, sso):
    from rest_framework.authtoken.models import Token

    from reportdesk.services import membership_set

    ops = WorkspaceFactory(slug="research-ops")
    elsewhere = WorkspaceFactory(slug="field-notes")  # a workspace the role map does not name
    sso.user("carol-sub", email="carol@corp.example", preferred_username="carol", groups=["research-analysts"])
    sign_in_with_sso(client, sso, sub="carol-sub")
    carol = User.objects.get(username="carol")
    membership_set(workspace=elsewhere, user=carol, role=Role.REVIEWER)  # given by an operator, by hand
    token = Token.objects.create(user=carol)
    ReportJobFactory(workspace=ops, requested_by=carol)
    api = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get("/api/v1/jobs/", {"workspace": "research-ops"}, **api).json()["count"] == 1
    client.logout()

    sso.user("carol-sub", email="carol@corp.example", preferred_username="carol", groups=[])
    assert sign_in_with_sso(client, sso, sub="carol-sub")["Location"] == "/sso/refused/"
    assert "your account, which is in no group" in client.get("/sso/refused/").content.decode()
    # the map's roles went with the groups (her API token reaches nothing of research-ops);
    # what an operator gave by hand stays
    assert roles(carol) == {"field-notes": Role.REVIEWER}
    assert client.get("/api/v1/jobs/", {"workspace": "research-ops"}, **api).json()["results"] == []


def test_a_refusal_at_the_provider_lands_on_the_refusal_page(client, sso):
    start = client.get("/oidc/authenticate/")
    import httpx

    with httpx.Client(timeout=5) as browser:
        denied = browser.post(start["Location"], data={"action": "deny"})
    back = urlsplit(denied.headers["location"])
    assert "error=access_denied" in back.query
    landed = client.get(f"{back.path}?{back.query}")
    assert landed["Location"] == "/sso/refused/"
    assert "Single sign-on did not complete." in client.get("/sso/refused/").content.decode()


def test_off_unless_configured(client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert b"Sign in with" not in client.get("/admin/login/").content


def test_refused_sign_ins_do_not_lock_out_single_sign_on(client, sso, settings):
    """Refusals carry no username: they must not count towards the password lockout, or a
    few refused colleagues behind one office address would lock everyone out."""
    settings.AXES_FAILURE_LIMIT = 2
    WorkspaceFactory(slug="research-ops")
    sso.user("mallory-sub", email="mallory@corp.example", preferred_username="mallory", groups=["marketing"])
    sso.user("dan-sub", email="dan@corp.example", preferred_username="dan", groups=["research-analysts"])
    for _ in range(3):
        assert sign_in_with_sso(client, sso, sub="mallory-sub")["Location"] == "/sso/refused/"
    assert sign_in_with_sso(client, sso, sub="dan-sub")["Location"] == "/admin/"


def test_a_break_glass_superuser_is_never_signed_in_through_the_provider(client, sso):
    from tests.factories import UserFactory

    WorkspaceFactory(slug="research-ops")
    root = UserFactory(username="root", email="root@corp.example", is_superuser=True)
    sso.user("root-sub", email="root@corp.example", preferred_username="root", groups=["research-leads"])

    assert sign_in_with_sso(client, sso, sub="root-sub")["Location"] == "/admin/"

    signed_in = User.objects.get(pk=client.session["_auth_user_id"])
    assert signed_in != root and not signed_in.is_superuser
    # the username was taken: the email stands in for it
    assert signed_in.username == "root@corp.example"
    assert roles(signed_in) == {"research-ops": Role.OPERATOR} and roles(root) == {}
