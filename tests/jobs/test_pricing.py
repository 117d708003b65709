"""What a response costs: worked examples against a price table, usage read from the fake as the
real API words it, and a job whose model has no price."""

from decimal import Decimal

import pytest

from jobs.pricing import model_prices, usage_cost
from jobs.providers.base import ReportRequest, Usage
from jobs.report_schema import SEARCH_SOURCES_TOOL
from tests.fakes.responses_api import CANCEL_LOSES_RACE, COMPLETED, Script

TABLE = {
    "gpt-test": {"input": Decimal("2"), "cached_input": Decimal("0.5"), "cache_write": Decimal("2.5"), "output": Decimal("8")},
    "gpt-test-mini": {"input": Decimal("0.25"), "cached_input": Decimal("0.025"), "output": Decimal("2")},
    "_tools": {"web_search": Decimal("0.01")},
}

M = 1_000_000

# (case, model, usage, expected USD or None for unknown)
WORKED_EXAMPLES = [
    ("plain input", "gpt-test", Usage(input_tokens=M), "2.000000"),
    ("cached input at the cached price", "gpt-test", Usage(input_tokens=M, cached_tokens=400_000), "1.400000"),  # 0.6×2 + 0.4×0.5
    ("cache writes at the cache-write price", "gpt-test", Usage(input_tokens=M, cache_write_tokens=500_000), "2.250000"),  # 0.5×2 + 0.5×2.5
    ("cache write defaults to the input price", "gpt-test-mini", Usage(input_tokens=M, cache_write_tokens=M), "0.250000"),
    ("reasoning is part of output, billed once", "gpt-test", Usage(output_tokens=100_000, reasoning_tokens=60_000), "0.800000"),
    ("three web searches", "gpt-test", Usage(tool_calls=5, web_searches=3), "0.030000"),
    ("function calls cost only their tokens", "gpt-test", Usage(input_tokens=1000, tool_calls=4), "0.002000"),
    ("a dated snapshot bills as its model", "gpt-test-2026-01-15", Usage(output_tokens=M), "8.000000"),
    ("everything at once", "gpt-test", Usage(input_tokens=20_000, cached_tokens=8_000, output_tokens=3_000, reasoning_tokens=1_000, tool_calls=3, web_searches=2), "0.072000"),  # 12k×2 + 8k×0.5 + 3k×8 = 0.052, + 0.02
    ("an unknown model", "gpt-unlisted", Usage(input_tokens=M), None),
    ("a prefix is not a price", "gpt-test-9", Usage(input_tokens=M), None),
]


@pytest.mark.parametrize("case,model,usage,expected", WORKED_EXAMPLES, ids=[row[0] for row in WORKED_EXAMPLES])
def test_worked_examples(settings, case, model, usage, expected):
    settings.PRICE_TABLE = TABLE

    cost = usage_cost(model=model, usage=usage)

    if expected is None:
        assert cost.usd is None
        assert model in cost.warning and "unknown" in cost.warning
    else:
        assert cost.usd == Decimal(expected) and cost.warning == ""


def test_searches_a_table_has_no_price_for_are_a_floor_with_a_warning_not_a_silent_zero(settings):
    settings.PRICE_TABLE = {"gpt-test": TABLE["gpt-test"]}  # no web_search price, no _tools

    searched = usage_cost(model="gpt-test", usage=Usage(input_tokens=M, web_searches=3))
    plain = usage_cost(model="gpt-test", usage=Usage(input_tokens=M))

    assert searched.usd == Decimal("2.000000") and "3 search(es) are not counted" in searched.warning
    assert plain.usd == Decimal("2.000000") and plain.warning == ""


def test_the_default_table_is_dated_and_prices_the_current_models(settings):
    assert settings.PRICE_TABLE_AS_OF
    for model in ("gpt-5.5", "gpt-5.4", "gpt-5.2", "gpt-5.1", "gpt-5", "gpt-5-mini", "gpt-4.1", "o3", "o4-mini"):
        prices = model_prices(model)
        assert prices and prices["output"] > prices["input"] > 0, model
    assert model_prices("gpt-5.2-2025-12-11") == model_prices("gpt-5.2")
    assert model_prices("_tools") is None


def _request():
    return ReportRequest(
        job_id="job_1", attempt=1, step="report", model="gpt-5.2", instructions="Write.", input_text="Topic: x",
        topic="x", audience="", sources=(), output_schema={}, tools=(SEARCH_SOURCES_TOOL,),
    )


def test_usage_counts_search_actions_not_page_opens_nor_function_calls(openai_fake, openai_provider):
    openai_fake.script_next(
        Script(web_search_calls=2, page_opens=3, function_calls=(("search_sources", "{}"),), output_text="notes",
               cache_write_tokens=300, input_tokens=1000)
    )
    created = openai_provider.create(_request())
    openai_fake.set_status(created.id, COMPLETED)

    usage = openai_provider.retrieve(created.id).usage

    assert (usage.tool_calls, usage.web_searches) == (6, 2)
    assert usage.cache_write_tokens == 300


def test_billable_searches_come_from_tool_usage_when_the_api_reports_it(openai_fake, openai_provider):
    openai_fake.script_next(Script(web_search_calls=3, billable_web_searches=2))
    created = openai_provider.create(_request())
    openai_fake.set_status(created.id, COMPLETED)

    assert openai_provider.retrieve(created.id).usage.web_searches == 2


def test_the_response_names_the_dated_snapshot_that_answered(openai_fake, openai_provider):
    created = openai_provider.create(_request())

    assert created.model == "gpt-5.2-2025-12-11"


@pytest.mark.django_db
class TestJobCost:
    def _job(self, model, openai_fake, openai_provider, **script):
        from tests.jobs.worker.test_step import advance, submit
        from tests.factories import WorkspaceFactory, member
        from reportdesk.models import Role

        workspace = WorkspaceFactory()
        openai_fake.script_next(Script(statuses=("completed",), **script))
        job = submit(workspace, member(workspace, Role.REQUESTER), review_required=False, model=model)
        return advance(job, openai_provider, times=2)

    def test_an_unknown_model_leaves_the_job_cost_unknown_with_a_warning(self, openai_fake, openai_provider):
        job = self._job("gpt-unlisted", openai_fake, openai_provider, input_tokens=5000)

        assert job.status == "completed" and job.input_tokens == 5000
        assert job.cost_usd is None
        assert "gpt-unlisted" in job.cost_warning
        call = job.provider_calls.get()
        assert call.cost_usd is None and call.cost_warning == job.cost_warning

    def test_a_response_that_wins_the_race_with_a_cancel_still_has_its_usage_recorded(self, openai_fake, openai_provider, settings):
        from jobs import services
        from jobs.worker import step
        from tests.jobs.worker.test_step import submit
        from tests.factories import WorkspaceFactory, member
        from reportdesk.models import Role

        settings.PRICE_TABLE = TABLE | {"gpt-5.2": TABLE["gpt-test"]}
        workspace = WorkspaceFactory()
        requester = member(workspace, Role.REQUESTER)
        openai_fake.script_next(Script.running(cancel_result=CANCEL_LOSES_RACE, input_tokens=M, output_tokens=0))
        job = submit(workspace, requester)
        step.job_advance(job_id=job.pk, provider=openai_provider)
        job.refresh_from_db()

        services.job_cancel(job=job, actor=requester)
        step.response_cancel(response_id=job.provider_response_id, provider=openai_provider)

        call = job.provider_calls.get()
        job.refresh_from_db()
        assert call.status == "completed" and call.input_tokens == M
        assert call.cost_usd == Decimal("2.000000") and job.cost_usd == Decimal("2.000000")
