"""The workspace and the requester the worker's tests submit jobs as."""

import pytest

from reportdesk.models import Role
from tests.factories import WorkspaceFactory, member


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops")


@pytest.fixture
def requester(workspace):
    return member(workspace, Role.REQUESTER)
