import pytest

from reportdesk.models import Role
from tests.factories import ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_signs_in_and_sees_their_workspace_jobs_only(page, login):
    workspace = WorkspaceFactory(slug="research-ops")
    operator = member(workspace, Role.OPERATOR, username="olga")
    mine = ReportJobFactory(workspace=workspace, topic="Heat pump retrofit economics")
    theirs = ReportJobFactory(topic="Another workspace's secret topic")

    login(operator)
    page.goto("/admin/jobs/reportjob/")

    assert page.get_by_text(mine.topic).is_visible()
    assert page.get_by_text(theirs.topic).count() == 0
