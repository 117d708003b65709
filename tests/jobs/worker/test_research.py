"""Multi-step research (template mode): plan → research the questions side by side with the
search_sources function tool, each chained from the plan → synthesize from the plan and the
questions' notes; each step a background response recorded as its own ProviderCall."""

import datetime as dt
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


def submit(**template_kwargs):
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory(mode="multi_step", required_sections=["Capacity", "Regulation"], model="gpt-5.2", **template_kwargs)
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
    assert sorted(c.step for c in calls) == ["plan", "research-1", "research-1", "research-2", "research-2", "synthesize"]
    plan, synthesis = calls[0], calls[-1]
    assert (plan.step, synthesis.step) == ("plan", "synthesize")
    # each question is chained from the plan, its second round from its first
    for name in ("research-1", "research-2"):
        first, second = [c for c in calls if c.step == name]
        assert first.previous_response_id == plan.provider_response_id
        assert second.previous_response_id == first.provider_response_id
        assert first.output["function_calls"][0]["name"] == "search_sources"
    # the synthesis is chained from the plan too, with the questions' notes as input
    assert synthesis.previous_response_id == plan.provider_response_id
    notes = [c for c in calls if c.step == "research-1"][1].output["text"]
    assert "[S1]" in notes  # notes written from the function's answer
    assert job.tool_calls == 2
    assert "## Capacity" in Artifact.objects.get(job=job, kind="report_md").content
    assert [e.action for e in JobEvent.objects.filter(job=job).order_by("id")] == ["submitted", "preparing", "started", "draft_ready"]


def test_through_the_sdk_each_request_is_valid_and_function_calls_are_answered(openai_fake, openai_provider):
    done = ("completed",)
    openai_fake.script_next(
        Script(statuses=done, output_text=json.dumps({"questions": ["How much capacity exists?", "What does regulation require?"]})),
        # both questions are in flight before the first one's answer comes back
        Script(statuses=("queued", "completed"), function_calls=(("search_sources", json.dumps({"query": "recycling capacity tonnes"})),)),
        Script(statuses=("queued", "completed"), output_text="Regulation: 50 percent lithium recovery by 2027 [S2]."),
        Script(statuses=done, output_text="Capacity: 410,000 tonnes a year in 2025 [S1]."),
        Script(statuses=done, input_tokens=900, output_tokens=400),
    )
    job = run_until_done(submit(), provider=openai_provider)
    assert job.status == "needs_review"

    bodies = [r.body for r in openai_fake.requests_to(CREATE)]
    assert [b["metadata"]["step"] for b in bodies] == ["plan", "research-1", "research-2", "research-1", "synthesize"]
    plan, research, research2, answer, synthesize = bodies
    plan_id, research_id = list(openai_fake.responses)[:2]
    assert plan["text"]["format"]["name"] == "research_plan" and "=== S1: Market note ===" in plan["input"]
    assert "text" not in research and any(t.get("name") == "search_sources" for t in research["tools"])
    assert "How much capacity exists?" in research["input"]
    assert "What does regulation require?" in research2["input"]
    assert research["previous_response_id"] == research2["previous_response_id"] == plan_id
    [output_item] = answer["input"]
    assert output_item["type"] == "function_call_output" and answer["previous_response_id"] == research_id
    passages = json.loads(output_item["output"])["passages"]
    assert passages[0]["source_id"] == "S1" and "410,000 tonnes" in passages[0]["text"]
    assert synthesize["text"]["format"]["name"] == "research_report" and synthesize["text"]["format"]["strict"] is True
    assert synthesize["previous_response_id"] == plan_id
    # each question's notes, not the whole chain, carry the research into the synthesis
    assert "Research notes 1: How much capacity exists?" in synthesize["input"]
    assert "Research notes 2: What does regulation require?" in synthesize["input"]
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


def test_the_questions_run_side_by_side(openai_fake, openai_provider):
    questions = ["How much capacity exists?", "What does regulation require?", "Who are the players?"]
    openai_fake.script_next(Script(statuses=("completed",), output_text=json.dumps({"questions": questions})))
    job = submit()
    job = run_until_done(job, openai_provider, limit=2)  # prepare + plan, then the fan-out

    live = ProviderCall.objects.filter(job=job).live()
    assert sorted(live.values_list("step", flat=True)) == ["research-1", "research-2", "research-3"]
    plan = ProviderCall.objects.get(job=job, step="plan")
    assert set(live.values_list("previous_response_id", flat=True)) == {plan.provider_response_id}
    in_flight = [openai_fake.body_of(response_id)["status"] for response_id in list(openai_fake.responses)[1:]]
    assert in_flight == ["queued"] * 3  # all three at the provider at once

    job = run_until_done(job, openai_provider)
    assert job.status == "needs_review"


def test_a_worker_that_died_mid_fan_out_is_resumed_from_the_finished_steps(openai_fake, openai_provider, settings):
    openai_fake.script_next(Script(statuses=("completed",), output_text=json.dumps({"questions": ["Q1?", "Q2?"]})))
    job = run_until_done(submit(), openai_provider, limit=2)
    # the worker died while creating research-2: its call has no response id, and is older
    # than the window in which a webhook could still have named its response
    died = ProviderCall.objects.get(job=job, step="research-2")
    waited = max(settings.LEASE_SECONDS, settings.CREATE_RECONCILE_SECONDS) + 1
    ProviderCall.objects.filter(pk=died.pk).update(
        provider_response_id=None, status="", created_at=timezone.now() - timezone.timedelta(seconds=waited)
    )

    job = run_until_done(job, openai_provider)

    assert job.status == "needs_review"
    steps = list(ProviderCall.objects.filter(job=job).order_by("id").values_list("step", "status"))
    assert steps.count(("plan", "completed")) == 1 and steps.count(("research-1", "completed")) == 1
    assert ("research-2", "lost") in steps and steps.count(("research-2", "completed")) == 1
    assert steps[-1] == ("synthesize", "completed")


def test_a_follow_up_round_researches_the_gaps_the_notes_leave(openai_fake, openai_provider):
    done = ("completed",)
    openai_fake.script_next(
        Script(statuses=done, output_text=json.dumps({"questions": ["How much capacity exists?"]})),
        Script(statuses=done, output_text="Capacity: 410,000 tonnes a year in 2025 [S1]."),
        Script(statuses=done, output_text=json.dumps({"questions": ["What does regulation require?"]})),
        Script(statuses=done, output_text="Regulation: 50 percent lithium recovery by 2027 [S2]."),
        Script(statuses=done),
    )
    job = submit(follow_up_round=True)

    job = run_until_done(job, openai_provider)

    assert job.status == "needs_review"
    bodies = [r.body for r in openai_fake.requests_to(CREATE)]
    assert [b["metadata"]["step"] for b in bodies] == ["plan", "research-1", "gaps", "research-2", "synthesize"]
    plan_id = list(openai_fake.responses)[0]
    gaps, follow_up, synthesis = bodies[2:]
    assert gaps["text"]["format"]["name"] == "research_plan" and "410,000 tonnes" in gaps["input"]
    assert "What does regulation require?" in follow_up["input"] and follow_up["previous_response_id"] == plan_id
    assert "410,000 tonnes" in synthesis["input"] and "50 percent lithium" in synthesis["input"]


def test_a_follow_up_round_with_no_gaps_goes_on_to_the_synthesis(openai_fake, openai_provider):
    done = ("completed",)
    openai_fake.script_next(
        Script(statuses=done, output_text=json.dumps({"questions": ["How much capacity exists?"]})),
        Script(statuses=done, output_text="Capacity: 410,000 tonnes [S1]."),
        Script(statuses=done, output_text=json.dumps({"questions": []})),
    )
    job = submit(follow_up_round=True)

    job = run_until_done(job, openai_provider)

    assert job.status == "needs_review"
    assert [c.step for c in ProviderCall.objects.filter(job=job).order_by("id")] == ["plan", "research-1", "gaps", "synthesize"]


def test_the_local_provider_runs_a_follow_up_round_too():
    job = submit(follow_up_round=True)

    job = run_until_done(job)

    assert job.status == "needs_review"
    steps = [c.step for c in ProviderCall.objects.filter(job=job).order_by("id")]
    assert "gaps" in steps and steps[-1] == "synthesize"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_the_questions_are_first_checked_on_the_grid_after_the_plan(settings, openai_fake, stream, request):
    """The step that starts the questions leaves the job due at their first check, not a
    minute on; in a worker that follows streams, every question is followed by its own (the
    end of any of them wakes the job), and its checks are the safety net's."""
    from jobs.providers.openai_provider import OpenAIProvider
    from jobs.worker import stream_watch

    settings.POLL_FIRST_SECONDS, settings.POLL_JITTER = 6.7, 0
    if stream:
        stream_watch.stream_watch_enable()  # as in a worker process
        request.addfinalizer(stream_watch.stream_watch_stop)
    provider = OpenAIProvider(api_key="sk-test", base_url=openai_fake.base_url, timeout=5.0, stream=stream)
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["How much capacity exists?", "What does regulation require?"]})),
        Script(statuses=("queued", "in_progress", "completed"), output_text="Capacity notes [S1]."),
        Script(statuses=("queued", "in_progress", "completed"), output_text="Regulation notes [S2]."),
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=provider)  # the plan, done at once
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    step.job_advance(job_id=job.pk, provider=provider)  # reads the plan, starts the questions

    job.refresh_from_db()
    assert ProviderCall.objects.filter(job=job, step__startswith="research").count() == 2
    first_check = settings.POLL_STREAMED_SECONDS if stream else 6.7
    assert first_check - 1.5 < (job.next_check_at - timezone.now()).total_seconds() <= first_check
    watched = set(ProviderCall.objects.filter(job=job, watched=True).values_list("step", flat=True))
    assert watched == ({"research-1", "research-2"} if stream else set())


def _questions_running(openai_fake, provider, count=3):
    """A multi-step job whose `count` questions run at the fake, none of them looked at yet."""
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": [f"Question {n}?" for n in range(1, count + 1)]})),
        *[Script(statuses=("queued",) + ("in_progress",) * 20) for _ in range(count)],
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=provider)  # the plan, done at once
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    step.job_advance(job_id=job.pk, provider=provider)  # reads the plan, starts the questions
    questions = list(ProviderCall.objects.filter(job=job, step__startswith="research").order_by("id"))
    assert [q.status for q in questions] == ["queued"] * count
    return job, questions


def _seconds_to_check(job) -> float:
    job.refresh_from_db()
    return (job.next_check_at - timezone.now()).total_seconds()


def test_each_question_is_checked_on_its_own_grid_however_many_run_beside_it(settings, openai_fake, openai_provider):
    """A check looks at one response. Three questions five minutes old, each last looked at on
    its 4-minute point, are all due at their 5-minute point: three checks in a row, one each,
    and only then a minute's wait — not a minute between them, which would leave each question
    three minutes between its checks."""
    settings.POLL_FIRST_SECONDS, settings.POLL_FAST_SECONDS, settings.POLL_MAX_SECONDS, settings.POLL_JITTER = 6.7, 60, 60, 0
    job, questions = _questions_running(openai_fake, openai_provider)
    started = timezone.now() - dt.timedelta(seconds=300)
    ProviderCall.objects.filter(pk__in=[q.pk for q in questions]).update(created_at=started, last_checked_at=started + dt.timedelta(seconds=240))

    polled = []
    for n in range(len(questions)):
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
        step.job_advance(job_id=job.pk, provider=openai_provider)
        polled.append(sorted(ProviderCall.objects.filter(job=job, step__startswith="research", polls__gt=0).values_list("step", flat=True)))
        if n < len(questions) - 1:
            assert _seconds_to_check(job) <= 0  # the next question is due already
    assert polled == [["research-1"], ["research-1", "research-2"], ["research-1", "research-2", "research-3"]]
    # Now the first due is research-1, at its 6-minute point.
    assert 59 < _seconds_to_check(job) <= 60
    assert ProviderCall.objects.filter(job=job, step__startswith="research", polls=1).count() == 3


def test_a_question_whose_end_is_announced_is_looked_at_first(settings, client, openai_fake, openai_provider):
    """A signed webhook for a question running beside the latest one wakes the job, and the
    check reads that question, not the one due first on the grid."""
    from tests.fakes.responses_api import make_webhook_secret, webhook_delivery

    settings.OPENAI_WEBHOOK_SECRET, settings.POLL_JITTER = make_webhook_secret(), 0
    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    openai_fake.set_status(second.provider_response_id, "completed")
    body, headers = webhook_delivery(second.provider_response_id, "response.completed", secret=settings.OPENAI_WEBHOOK_SECRET)

    assert client.post("/webhooks/openai/", data=body, content_type="application/json", headers=headers).json() == {"status": "woken"}
    assert _seconds_to_check(job) <= 0

    step.job_advance(job_id=job.pk, provider=openai_provider)
    second.refresh_from_db()
    assert second.status == "completed" and second.polls == 1
    assert not ProviderCall.objects.filter(pk__in=[first.pk, latest.pk], polls__gt=0).exists()
    # the two still running are next due on their grid, 6.7 s from their start
    assert 0 < _seconds_to_check(job) <= 6.7


def test_a_check_that_started_the_next_round_keeps_the_questions_beside_it_due(settings, openai_fake, openai_provider):
    """A question's tool round starts a new response; the job is next due when the first of
    its running responses is, not at the new one's first check."""
    settings.POLL_FIRST_SECONDS, settings.POLL_JITTER = 6.7, 0
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["Question 1?", "Question 2?"]})),
        Script(statuses=("queued", "completed"), function_calls=(("search_sources", json.dumps({"query": "capacity"})),)),
        Script(statuses=("queued",) + ("in_progress",) * 20),
        Script(statuses=("queued",) + ("in_progress",) * 20),
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=openai_provider)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    step.job_advance(job_id=job.pk, provider=openai_provider)  # the questions start
    # research-1 started 7 s ago (due now: it answers with a function call), research-2 5 s ago
    ProviderCall.objects.filter(job=job, step="research-1").update(created_at=timezone.now() - dt.timedelta(seconds=7))
    ProviderCall.objects.filter(job=job, step="research-2").update(created_at=timezone.now() - dt.timedelta(seconds=5))
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=openai_provider)  # reads research-1, starts its answer round

    assert ProviderCall.objects.filter(job=job, step="research-1").count() == 2
    # research-2 is due 1.7 s on (its first check, 6.7 s from its start), before the new round's
    assert 0 < _seconds_to_check(job) <= 1.8


# --- Waits that stand: a failed question's retry, an unanswered create's reconcile ----------


def _second_fails_and_waits(settings, openai_fake, provider):
    """Three questions running; the second's response fails (a transient server_error): its
    automatic retry waits 300 s."""
    settings.PROVIDER_RETRY_BASE_SECONDS = 300
    job, questions = _questions_running(openai_fake, provider)
    second = questions[1]
    openai_fake.set_status(second.provider_response_id, "failed")
    assert services.job_wake(call=second, details={"type": "response.failed"})
    step.job_advance(job_id=job.pk, provider=provider)
    second.refresh_from_db()
    assert second.status == "failed" and _seconds_to_check(job) > 250
    return job, questions


def test_a_failed_create_among_the_questions_waits_for_its_retry(settings, openai_fake, openai_provider):
    """The step that starts the questions stops at a create that failed: the question is not
    created again at once (two responses billed, the retries used up in one step), and its
    retry wait stands."""
    from tests.fakes.responses_api import Fault

    settings.PROVIDER_RETRY_BASE_SECONDS = 300
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["Question 1?", "Question 2?"]})),
        *[Script(statuses=("queued",) + ("in_progress",) * 20)] * 2,
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=openai_provider)  # the plan
    openai_fake.inject(CREATE, Fault.server_error())  # research-1's create fails
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=openai_provider)

    assert list(ProviderCall.objects.filter(job=job, step="research-1").values_list("status", flat=True)) == ["error"]
    assert _seconds_to_check(job) > 250


def test_a_question_create_that_got_no_answer_is_not_made_again_in_the_same_step(openai_fake, openai_provider):
    """A create that timed out may have started a response: nothing is created for that
    question until it is reconciled, however many others the step starts."""
    from tests.fakes.responses_api import Fault

    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["Question 1?", "Question 2?"]})),
        *[Script(statuses=("queued",) + ("in_progress",) * 20)] * 3,
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=openai_provider)  # the plan
    openai_fake.inject(CREATE, Fault.delay(3.0))  # research-1's create: started, answered after our 2 s timeout
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=openai_provider)

    statuses = list(ProviderCall.objects.filter(job=job, step="research-1").values_list("status", flat=True))
    assert statuses == ["unconfirmed"]


def test_a_failed_round_create_keeps_its_wait_beside_the_questions_running(settings, openai_fake, openai_provider):
    """A question's answer round whose create fails waits for its retry, even though another
    question runs beside it and would be due sooner on its grid."""
    from tests.fakes.responses_api import Fault

    settings.PROVIDER_RETRY_BASE_SECONDS, settings.POLL_JITTER = 300, 0
    openai_fake.script_next(
        Script(statuses=("completed",), output_text=json.dumps({"questions": ["Question 1?", "Question 2?"]})),
        Script(statuses=("queued", "completed"), function_calls=(("search_sources", json.dumps({"query": "capacity"})),)),
        Script(statuses=("queued",) + ("in_progress",) * 20),
    )
    job = submit()
    step.job_advance(job_id=job.pk, provider=openai_provider)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())
    step.job_advance(job_id=job.pk, provider=openai_provider)  # the questions start
    openai_fake.inject(CREATE, Fault.server_error())  # research-1's answer round fails
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=openai_provider)  # reads research-1: a function call

    assert list(ProviderCall.objects.filter(job=job, step="research-1").values_list("status", flat=True)) == ["completed", "error"]
    assert _seconds_to_check(job) > 250


def test_a_question_stream_handed_back_keeps_a_retry_wait(settings, openai_fake, openai_provider):
    """A stream given up (or handed back by a worker process that exits) brings its response's
    next check in, but not past another question's retry wait."""
    from jobs.worker import stream_watch

    job, (first, second, latest) = _second_fails_and_waits(settings, openai_fake, openai_provider)
    ProviderCall.objects.filter(pk=first.pk).update(watched=True)

    stream_watch.stream_unwatched(response_id=first.provider_response_id)

    assert _seconds_to_check(job) > 250


def test_an_end_announced_during_a_retry_wait_is_read_first_once_it_is_over(settings, openai_fake, openai_provider):
    job, (first, second, latest) = _second_fails_and_waits(settings, openai_fake, openai_provider)
    openai_fake.set_status(first.provider_response_id, "completed")

    assert not services.job_wake(call=first, details={"type": "response.completed"})  # the wait stands
    assert _seconds_to_check(job) > 250

    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())  # the wait is over
    step.job_advance(job_id=job.pk, provider=openai_provider)  # the retry
    assert ProviderCall.objects.filter(job=job, step="research-2").count() == 2
    assert _seconds_to_check(job) <= 0  # research-1 is due at once
    step.job_advance(job_id=job.pk, provider=openai_provider)
    first.refresh_from_db()
    assert first.status == "completed"


# --- Wakes that come while the step is at work ------------------------------------------------


class _WakeWhileAsking:
    """The provider, with another response's end announced (services.job_wake, as its webhook
    does) while a retrieve is in flight; `then` decides what that retrieve answers."""

    def __init__(self, provider, *, wake, then=None):
        self._provider, self._wake, self._then, self.asked = provider, wake, then, []

    def __getattr__(self, name):
        return getattr(self._provider, name)

    @property
    def direct(self):
        return self

    def retrieve(self, response_id):
        self.asked.append(response_id)
        state = self._provider.retrieve(response_id)
        if len(self.asked) == 1:
            assert services.job_wake(call=ProviderCall.objects.get(pk=self._wake.pk), details={"type": "response.completed"})
            if self._then:
                self._then()
        return state


def test_an_end_announced_during_another_question_s_poll_is_read_at_once(openai_fake, openai_provider):
    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    openai_fake.set_status(second.provider_response_id, "completed")
    provider = _WakeWhileAsking(openai_provider, wake=second)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=provider)

    assert provider.asked == [first.provider_response_id, second.provider_response_id]
    second.refresh_from_db()
    assert second.status == "completed"
    assert 0 < _seconds_to_check(job) <= 6.7


def test_an_end_announced_while_its_own_poll_was_in_flight_is_read_again(openai_fake, openai_provider):
    """The poll answered "in progress" before the end it then announced: the response was
    looked at before the announcement, so it is read once more."""
    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    ProviderCall.objects.filter(pk=second.pk).update(created_at=timezone.now() - dt.timedelta(seconds=10))  # due first
    provider = _WakeWhileAsking(openai_provider, wake=second, then=lambda: openai_fake.set_status(second.provider_response_id, "completed"))
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=provider)

    assert provider.asked == [second.provider_response_id, second.provider_response_id]
    second.refresh_from_db()
    assert second.status == "completed"


def test_an_end_announced_during_a_failed_poll_is_kept(openai_fake, openai_provider):
    """A retrieve that fails (transiently) puts the job back on the grid, but not past the end
    of another question announced meanwhile."""
    from jobs.providers.base import ProviderError

    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)

    def fail():
        raise ProviderError("The provider is unavailable.", transient=True, code="server_error")

    provider = _WakeWhileAsking(openai_provider, wake=second, then=fail)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=provider)

    assert provider.asked == [first.provider_response_id]
    assert _seconds_to_check(job) <= 0
    first.refresh_from_db()
    assert first.error_code == "server_error"


def _wake_in_a_thread_of_its_own(call) -> bool:
    from django.db import connection

    try:
        return services.job_wake(call=ProviderCall.objects.get(pk=call.pk), details={"type": "response.completed"})
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_an_end_announced_while_the_step_reschedules_stands(openai_fake, openai_provider, monkeypatch):
    """The step that read a question's end sets the next check from the questions still
    running, under the job's lock: an end announced meanwhile (another process, waiting on
    the lock) leaves the job due, rather than being overwritten by that schedule."""
    import threading

    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    openai_fake.set_status(first.provider_response_id, "completed")
    real, wakes = step.research_check_in, []

    def check_in_while_a_wake_comes(*, attempt):
        seconds = real(attempt=attempt)
        if not wakes:
            wake = threading.Thread(target=lambda: wakes.append(_wake_in_a_thread_of_its_own(second)))
            wakes.append(wake)
            wake.start()
            wake.join(timeout=0.5)  # it waits for the lock (or, unlocked, is done by now)
        return seconds

    monkeypatch.setattr(step, "research_check_in", check_in_while_a_wake_comes)
    ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now())

    step.job_advance(job_id=job.pk, provider=openai_provider)  # reads research-1: its notes
    wakes[0].join(timeout=10)

    assert wakes[1:] == [True]
    assert _seconds_to_check(job) <= 0


@pytest.mark.parametrize("announce", ["wake", "stream handed back"])
@pytest.mark.django_db(transaction=True)
def test_an_announcement_waiting_on_the_lock_sees_a_retry_wait_set_meanwhile(openai_fake, openai_provider, announce):
    """A worker records a question's failure and its retry wait under the job's lock while
    another question's end is announced (or its stream handed back) from another process:
    once the lock is free, that announcement sees the wait, and leaves it standing."""
    import threading

    from django.db import connection, transaction

    from jobs.worker import stream_watch

    job, (first, second, latest) = _questions_running(openai_fake, openai_provider)
    ProviderCall.objects.filter(pk=first.pk).update(watched=True)
    outcome = []

    def announcement():
        try:
            if announce == "wake":
                outcome.append(services.job_wake(call=ProviderCall.objects.get(pk=first.pk), details={"type": "response.completed"}))
            else:
                outcome.append(stream_watch.stream_unwatched(response_id=first.provider_response_id))
        finally:
            connection.close()

    other = threading.Thread(target=announcement)
    with transaction.atomic():
        services.job_lock(job.pk)
        other.start()
        other.join(timeout=0.5)  # waits for the lock
        ProviderCall.objects.filter(pk=second.pk).update(status="failed")
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() + dt.timedelta(seconds=300))
    other.join(timeout=10)

    assert outcome == ([False] if announce == "wake" else [None])
    assert _seconds_to_check(job) > 250
