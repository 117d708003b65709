"""Budget use where operators look: the job page (cost against the template's cap) and the
dashboard (each workspace's spend this month against its monthly budget)."""

from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import ReportJob
from tests.admin.builders import job_in
from tests.factories import ReportTemplateFactory

pytestmark = pytest.mark.django_db


def test_the_job_page_shows_the_cost_against_the_cap_and_an_unknown_cost(as_user, operator, workspace):
    capped = job_in("completed", workspace=workspace, template=ReportTemplateFactory(cost_cap_usd=Decimal("0.40")))
    ReportJob.objects.filter(pk=capped.pk).update(cost_usd=Decimal("0.30"))
    unknown = job_in("completed", workspace=workspace)
    ReportJob.objects.filter(pk=unknown.pk).update(cost_usd=None, cost_warning="No price for model gpt-9 in the price table")
    client = as_user(operator)

    capped_page = client.get(f"/admin/jobs/reportjob/{capped.public_id}/change/").content.decode()
    unknown_page = client.get(f"/admin/jobs/reportjob/{unknown.public_id}/change/").content.decode()

    assert "$0.3000" in capped_page and "75% of the $0.40 cap per report" in capped_page
    assert "<strong>unknown</strong>" in unknown_page and "No price for model gpt-9" in unknown_page


def test_the_dashboard_shows_each_workspace_budget_used_this_month(as_user, operator, workspace):
    workspace.monthly_budget_usd = Decimal("10.00")
    workspace.save()
    job = job_in("completed", workspace=workspace)
    ReportJob.objects.filter(pk=job.pk).update(cost_usd=Decimal("9.25"), created_at=timezone.now())

    html = as_user(operator).get("/admin/jobs/reportjob/metrics/").content.decode()

    assert "Budget this month: Research Ops" in html
    assert "$9.25 of $10.00" in html and "92% used" in html
