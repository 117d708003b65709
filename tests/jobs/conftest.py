"""The workspace and the requester the jobs tests submit as (a module may name its own)."""

import pytest

from reportdesk.models import Role
from tests.factories import WorkspaceFactory, member


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops")


@pytest.fixture
def requester(workspace):
    return member(workspace, Role.REQUESTER)
