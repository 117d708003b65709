"""Budgets: a template's cost cap per report and a workspace's monthly budget refuse a submit
that cannot fit (400 `budget_exceeded`, naming the budget) and stop a run that reaches them;
the template's caps on output tokens and tool calls go out with every request."""

from decimal import Decimal

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import ProviderCall, ReportJob
from reportdesk.errors import BudgetExceeded
from sources.services import SourceSpec
from tests.api.conftest import client_for
from tests.factories import ReportJobFactory, ReportTemplateFactory, WorkspaceFactory
from tests.fakes.responses_api import CREATE, Script
from tests.jobs.worker.test_research import run_until_done

pytestmark = pytest.mark.django_db

# About 25,000 tokens of source text: at least $0.04 on gpt-5.2 (1.75 per 1M input).
LONG_TEXT = "Battery recycling capacity grew in 2025. " * 2500


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="acme", name="Acme Research")


def test_a_submit_over_the_template_cap_is_refused_with_budget_exceeded(workspace, requester):
    template = ReportTemplateFactory(slug="brief", name="Brief", model="gpt-5.2", cost_cap_usd=Decimal("0.01"))

    response = client_for(requester).post(
        "/api/v1/jobs/",
        {"workspace": "acme", "template": "brief", "topic": "Recycling", "sources": [{"title": "Long", "text": LONG_TEXT}]},
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "Brief's cost cap of $0.01 per report" in error["message"]
    assert error["fields"]["budget"] == "template_cost_cap"
    assert not ReportJob.objects.exists()
    # the same request with a short source fits
    small = client_for(requester).post(
        "/api/v1/jobs/", {"workspace": "acme", "template": template.slug, "topic": "Recycling",
                          "sources": [{"title": "Short", "text": "Capacity grew."}]}, format="json",
    )
    assert small.status_code == 201


def test_an_edit_whose_sources_do_not_fit_the_cap_is_refused_and_changes_nothing(workspace, requester):
    ReportTemplateFactory(slug="brief", name="Brief", model="gpt-5.2", cost_cap_usd=Decimal("0.01"))
    api = client_for(requester)
    created = api.post("/api/v1/jobs/", {"workspace": "acme", "template": "brief", "topic": "Recycling",
                                         "sources": [{"title": "Short", "text": "Capacity grew."}]}, format="json")
    job = ReportJob.objects.get(public_id=created.json()["id"])

    edited = api.patch(f"/api/v1/jobs/{job.public_id}/", {"topic": "Recycling in 2025", "sources": [{"title": "Long", "text": LONG_TEXT}]}, format="json")

    assert edited.status_code == 400
    assert edited.json()["error"]["code"] == "budget_exceeded"
    assert edited.json()["error"]["fields"]["budget"] == "template_cost_cap"
    unchanged = ReportJob.objects.get(pk=job.pk)
    assert (unchanged.topic, unchanged.source_manifest_id) == ("Recycling", job.source_manifest_id)
    assert not unchanged.events.filter(action="edited").exists()
    # a short source still fits
    assert api.patch(f"/api/v1/jobs/{job.public_id}/", {"sources": [{"title": "Other", "text": "Capacity fell."}]}, format="json").status_code == 200


def test_a_submit_over_what_is_left_of_the_monthly_budget_is_refused(workspace, requester):
    workspace.monthly_budget_usd = Decimal("5.00")
    workspace.save()
    spent = ReportJobFactory(workspace=workspace)
    ReportJob.objects.filter(pk=spent.pk).update(cost_usd=Decimal("4.99"), created_at=timezone.now())
    template = ReportTemplateFactory(model="gpt-5.2")

    with pytest.raises(BudgetExceeded) as refused:
        services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                            sources=[SourceSpec(title="Long", text=LONG_TEXT)])

    assert refused.value.fields["budget"] == "workspace_monthly_budget"
    assert "$0.01 left of workspace Acme Research's monthly budget of $5.00" in refused.value.message


def test_last_months_spend_does_not_count_against_this_month(workspace, requester):
    workspace.monthly_budget_usd = Decimal("5.00")
    workspace.save()
    old = ReportJobFactory(workspace=workspace)
    ReportJob.objects.filter(pk=old.pk).update(cost_usd=Decimal("50"), created_at=timezone.now() - timezone.timedelta(days=40))
    template = ReportTemplateFactory(model="gpt-5.2")

    job = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                              sources=[SourceSpec(title="Long", text=LONG_TEXT)])

    assert job.status == "queued"


def test_a_multi_step_run_that_reaches_its_cap_stops_as_a_policy_block(workspace, requester, openai_fake, openai_provider, settings):
    settings.PRICE_TABLE = {"gpt-5.2": {"input": Decimal("1.75"), "cached_input": Decimal("0.175"), "output": Decimal("14")}}
    template = ReportTemplateFactory(name="Deep dive", mode="multi_step", model="gpt-5.2", cost_cap_usd=Decimal("0.50"))
    # the plan alone bills 300,000 input tokens: $0.525, over the $0.50 cap
    openai_fake.script_next(Script(statuses=("completed",), output_text='{"questions": ["Q1", "Q2"]}', input_tokens=300_000, output_tokens=0))
    job = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                              sources=[SourceSpec(title="Note", text="Capacity grew.")])

    job = run_until_done(job, openai_provider)

    assert job.status == "failed" and job.failure_class == "policy_block"
    assert "Deep dive's cost cap of $0.50 per report is reached" in job.failure_message
    assert openai_fake.count(CREATE) == 1
    assert job.cost_usd == Decimal("0.525000")


PRICES = {"gpt-5.2": {"input": Decimal("1.75"), "cached_input": Decimal("0.175"), "output": Decimal("14")}}


def test_research_questions_wait_while_the_running_ones_may_reach_the_cap(workspace, requester, openai_fake, openai_provider, settings):
    settings.PRICE_TABLE = PRICES
    cap = Decimal("0.50")
    template = ReportTemplateFactory(name="Deep dive", mode="multi_step", model="gpt-5.2", cost_cap_usd=cap)
    # the plan bills 200,000 input tokens ($0.35) and asks four questions; each question is
    # chained to it, so billed its 200,000 tokens again, and runs a little before it ends
    openai_fake.script_next(
        Script(statuses=("completed",), output_text='{"questions": ["Q1", "Q2", "Q3", "Q4"]}', input_tokens=200_000, output_tokens=0),
        *[Script(statuses=("queued", "completed"), output_text="Notes.", input_tokens=200_000, output_tokens=0) for _ in range(4)],
    )
    job = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                              sources=[SourceSpec(title="Note", text="Capacity grew.")])

    job = run_until_done(job, openai_provider)

    # one question went out beside the plan's spend (it may cross the cap, as any one call
    # may); the others waited for it, and its cost stopped the run
    assert job.status == "failed" and job.failure_class == "policy_block"
    assert list(ProviderCall.objects.filter(job=job).order_by("id").values_list("step", flat=True)) == ["plan", "research-1"]
    assert job.cost_usd == Decimal("0.700000")
    question = ProviderCall.objects.get(job=job, step="research-1")
    assert question.estimated_cost_usd >= Decimal("0.35")  # the plan's context it carries


def test_jobs_of_a_workspace_wait_while_running_ones_may_spend_its_budget(workspace, requester, openai_fake, openai_provider, settings):
    settings.PRICE_TABLE = PRICES
    workspace.monthly_budget_usd = Decimal("0.10")
    workspace.save()
    template = ReportTemplateFactory(name="Brief", model="gpt-5.2")
    # each report reads 25,000 tokens of sources: $0.04375 (held at $0.05 while it runs: its
    # least answer is counted too, though these answer in no tokens)
    openai_fake.script_next(*[Script(statuses=("queued", "completed"), input_tokens=25_000, output_tokens=0) for _ in range(4)])
    jobs = [
        services.job_submit(workspace=workspace, requested_by=requester, template=template, topic=f"Recycling {n}",
                            sources=[SourceSpec(title="Long", text=LONG_TEXT)])
        for n in range(4)
    ]  # each fits what is left: nothing is spent or running yet

    for job in jobs:  # the worker comes to each in turn while the first ones run
        run_until_done(job, openai_provider, limit=1)
    started = [ProviderCall.objects.filter(job=job).exists() for job in jobs]
    for job in jobs:
        run_until_done(job, openai_provider)

    assert started == [True, True, False, False]  # two running may spend the $0.10: the others wait
    spent = sum(j.cost_usd or 0 for j in ReportJob.objects.filter(workspace=workspace))
    statuses = sorted(ReportJob.objects.filter(workspace=workspace).values_list("status", flat=True))
    assert statuses == ["failed", "needs_review", "needs_review", "needs_review"]
    assert spent <= workspace.monthly_budget_usd + Decimal("0.06")  # one report past it, at most
    assert openai_fake.count(CREATE) == 3  # the fourth never went out


def test_a_submit_counts_what_is_running_in_the_workspace_as_spent(workspace, requester, openai_fake, openai_provider, settings):
    settings.PRICE_TABLE = PRICES
    workspace.monthly_budget_usd = Decimal("0.10")
    workspace.save()
    template = ReportTemplateFactory(name="Brief", model="gpt-5.2")
    openai_fake.script_next(Script(statuses=("queued", "queued", "completed"), input_tokens=25_000, output_tokens=0))
    running = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                                  sources=[SourceSpec(title="Long", text=LONG_TEXT)])
    run_until_done(running, openai_provider, limit=1)  # its call runs: about $0.05 held, nothing spent
    assert ProviderCall.objects.get(job=running).status == "queued"

    with pytest.raises(BudgetExceeded) as refused:  # another $0.05 does not fit in what is left
        services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling again",
                            sources=[SourceSpec(title="Long", text=LONG_TEXT)])

    assert refused.value.fields["budget"] == "workspace_monthly_budget"


def test_a_stopped_jobs_unanswered_create_holds_no_budget(workspace, requester, openai_fake, openai_provider, settings):
    import datetime as dt

    from jobs.worker import dispatcher, step
    from tests.fakes.responses_api import Fault

    settings.PRICE_TABLE = PRICES
    settings.OPENAI_TIMEOUT_SECONDS = 1.0
    workspace.monthly_budget_usd = Decimal("0.10")
    workspace.save()
    template = ReportTemplateFactory(name="Brief", model="gpt-5.2")
    a, b = (services.job_submit(workspace=workspace, requested_by=requester, template=template, topic=f"Recycling {n}",
                                sources=[SourceSpec(title="Long", text=LONG_TEXT)]) for n in "AB")
    ReportJobFactory(workspace=workspace, template=template, status="completed", cost_usd=Decimal("0.05"))  # spent this month
    # A's create gets no answer (a response may have started), then A is canceled: nobody
    # follows that call any more
    openai_fake.script_next(Script(statuses=("queued", "completed"), input_tokens=25_000, output_tokens=0))
    openai_fake.inject(CREATE, Fault.delay(3.0))
    step.job_advance(job_id=a.pk, provider=openai_provider)
    assert ProviderCall.objects.get(job=a).status == "unconfirmed"
    services.job_cancel(job=a, actor=requester)
    ProviderCall.objects.filter(job=a).update(created_at=timezone.now() - dt.timedelta(hours=3))
    dispatcher.sweep()

    openai_fake.script_next(Script(statuses=("queued", "completed"), input_tokens=25_000, output_tokens=0))
    b = run_until_done(b, openai_provider, limit=10)

    assert b.status == "needs_review"  # not held for the month by A's call


def test_the_template_caps_are_sent_with_every_request(workspace, requester, openai_fake, openai_provider):
    template = ReportTemplateFactory(model="gpt-5.2", max_output_tokens=6000, max_tool_calls=4, web_search=True)
    job = services.job_submit(workspace=workspace, requested_by=requester, template=template, topic="Recycling",
                              sources=[SourceSpec(title="Note", text="Capacity grew.")])

    run_until_done(job, openai_provider, limit=1)

    [create] = openai_fake.requests_to(CREATE)
    assert create.body["max_output_tokens"] == 6000 and create.body["max_tool_calls"] == 4


def test_the_api_shows_the_cost_against_the_cap(workspace, requester):
    template = ReportTemplateFactory(model="gpt-5.2", cost_cap_usd=Decimal("2.00"))
    job = ReportJobFactory(workspace=workspace, template=template, requested_by=requester)
    ReportJob.objects.filter(pk=job.pk).update(cost_usd=Decimal("0.5"))

    cost = client_for(requester).get(f"/api/v1/jobs/{job.public_id}/").json()["cost"]

    assert cost["usd"] == "0.500000" and cost["cap_usd"] == "2.00" and cost["warning"] == ""
