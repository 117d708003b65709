"""Multi-step research (template mode): plan → research each question with the
search_sources function tool → synthesize, each step a background response chained with
previous_response_id and recorded as its own ProviderCall."""

import json

import pytest
from django.utils import timezone

from jobs import services
from jobs.worker import step
from jobs.models import Artifact, JobEvent, ProviderCall, ReportJob
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.fakes.responses_api import CREATE, Script

pytestmark = pytest.mark.django_db

SOURCES = [
    SourceSpec(title="Market note", text="European battery recycling capacity reached 410,000 tonnes a year in 2025.\n\nMost plants make black mass."),
    SourceSpec(title="Policy", text="The EU Battery Regulation sets a 50 percent lithium recovery target by 2027."),
]


def submit():
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory(mode="multi_step", required_sections=["Capacity", "Regulation"], model="gpt-5.2")
    return services.job_submit(workspace=workspace, requested_by=requester, template=template,
                               topic="Battery recycling capacity and regulation", sources=SOURCES)


def run_until_done(job, provider=None, limit=30):
    """The worker's step, each time the job is due (the waits in between skipped)."""
    for _ in range(limit):
        ReportJob.objects.filter(pk=job.pk, next_check_at__gt=timezone.now()).update(next_check_at=timezone.now())
        step.job_advance(job_id=job.pk, provider=provider)
        job.refresh_from_db()
        if job.status not in ("queued", "preparing", "running"):
            break
    return job


def test_local_provider_plans_researches_with_the_function_tool_and_synthesizes():
    job = run_until_done(submit())
    assert job.status == "needs_review" and job.version == 1
    calls = list(ProviderCall.objects.filter(job=job).order_by("id"))
    assert [c.step for c in calls] == ["plan", "research-1", "research-1", "research-2", "research-2", "synthesize"]
    # each step is chained to the one before it
    for previous, call in zip(calls, calls[1:]):
        assert call.previous_response_id == previous.provider_response_id
    assert calls[1].output["function_calls"][0]["name"] == "search_sources"
    assert "[S1]" in calls[2].output["text"]  # notes written from the function's answer
    assert job.tool_calls == 2
    assert "## Capacity" in Artifact.objects.get(job=job, kind="report_md").content
    assert [e.action for e in JobEvent.objects.filter(job=job).order_by("id")] == ["submitted", "preparing", "started", "draft_ready"]


def test_through_the_sdk_each_request_is_valid_and_function_calls_are_answered(openai_fake, openai_provider):
    done = ("completed",)
    openai_fake.script_next(
        Script(statuses=done, output_text=json.dumps({"questions": ["How much capacity exists?", "What does regulation require?"]})),
        Script(statuses=done, function_calls=(("search_sources", json.dumps({"query": "recycling capacity tonnes"})),)),
        Script(statuses=done, output_text="Capacity: 410,000 tonnes a year in 2025 [S1]."),
        Script(statuses=done, output_text="Regulation: 50 percent lithium recovery by 2027 [S2]."),
        Script(statuses=done, input_tokens=900, output_tokens=400),
    )
    job = run_until_done(submit(), provider=openai_provider)
    assert job.status == "needs_review"

    bodies = [r.body for r in openai_fake.requests_to(CREATE)]
    assert [b["metadata"]["step"] for b in bodies] == ["plan", "research-1", "research-1", "research-2", "synthesize"]
    plan, research, answer, research2, synthesize = bodies
    assert plan["text"]["format"]["name"] == "research_plan" and "=== S1: Market note ===" in plan["input"]
    assert "text" not in research and any(t.get("name") == "search_sources" for t in research["tools"])
    assert "How much capacity exists?" in research["input"]
    [output_item] = answer["input"]
    assert output_item["type"] == "function_call_output"
    passages = json.loads(output_item["output"])["passages"]
    assert passages[0]["source_id"] == "S1" and "410,000 tonnes" in passages[0]["text"]
    assert "What does regulation require?" in research2["input"]
    assert synthesize["text"]["format"]["name"] == "research_report" and synthesize["text"]["format"]["strict"] is True
    created = list(openai_fake.responses)
    for earlier, body in zip(created, bodies[1:]):
        assert body["previous_response_id"] == earlier
    assert ProviderCall.objects.filter(job=job).count() == 5
    assert job.input_tokens >= 900


def test_a_question_out_of_tool_rounds_is_asked_to_write(openai_fake, openai_provider):
    looping = Script(statuses=("completed",), function_calls=(("search_sources", json.dumps({"query": "capacity"})),))
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["Q?"]})), *[looping] * 4, Script(statuses=("completed",))
    )

    job = run_until_done(submit(), provider=openai_provider)

    assert job.status == "needs_review"
    bodies = [r.body for r in openai_fake.requests_to(CREATE)]
    assert [b["metadata"]["step"] for b in bodies] == ["plan"] + ["research-1"] * 4 + ["synthesize"]
    last_round = bodies[4]
    # the last round still gets the search results, and must write: no more tool calls
    assert last_round["tool_choice"] == "none"
    assert "passages" in json.loads(last_round["input"][0]["output"])
    assert all("tool_choice" not in body for body in bodies[1:4])


def test_a_plan_without_usable_questions_goes_straight_to_the_report(openai_fake, openai_provider):
    openai_fake.script_next(Script(statuses=("completed",), output_text="not json at all"))
    job = run_until_done(submit(), provider=openai_provider)
    assert job.status == "needs_review"
    assert [c.step for c in ProviderCall.objects.filter(job=job).order_by("id")] == ["plan", "synthesize"]
