import pytest

from reportdesk.models import Role
from tests.factories import UserFactory, WorkspaceFactory, member


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops", name="Research Ops")


@pytest.fixture
def other_workspace():
    return WorkspaceFactory(slug="secret-lab", name="Secret Lab")


@pytest.fixture
def operator(workspace):
    return member(workspace, Role.OPERATOR, username="olga")


@pytest.fixture
def reviewer(workspace):
    return member(workspace, Role.REVIEWER, username="rita")


@pytest.fixture
def requester(workspace):
    return member(workspace, Role.REQUESTER, username="remy")


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def as_user(client):
    def _as(user):
        client.force_login(user)
        return client

    return _as
