"""Multi-step research: which steps of an attempt run next, and which call to look at.

plan (research questions) → research every question side by side (the model may call the
`search_sources` function tool; the worker answers with `function_call_output`) →
synthesize. Each research question is chained to the plan with `previous_response_id` (not
to the other questions), its tool rounds to its own previous round; the synthesis is chained
to the plan and given each question's notes as input, so no hop re-bills the whole chain.
Each step is a ProviderCall; what runs next is read from what the attempt's calls answered,
so a worker that died mid-run resumes from the last finished steps.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from django.conf import settings
from django.utils import timezone

from ..budgets import budget_held, budget_reached
from ..models import CallStatus, FailureClass, JobAttempt, ProviderCall, ReportJob, TemplateMode
from ..report_schema import MAX_RESEARCH_QUESTIONS
from .cadence import grid_point
from .prompt import Step, previous_draft_response_id, search_sources

# Function-call answers per research question; the last is sent with tool_choice "none", so
# the model must write its notes from what it has found.
MAX_TOOL_ROUNDS = 3


class StepRefused(Exception):
    """No further provider call may be made for this attempt; the job fails as `failure_class`."""

    failure_class = FailureClass.PROVIDER_ERROR


class ResearchLoop(StepRefused):
    """The model kept calling tools instead of writing its notes."""


class BudgetReached(StepRefused):
    """The job's cost has reached its template's cap or its workspace's monthly budget."""

    failure_class = FailureClass.POLICY_BLOCK


class BudgetHeld(Exception):
    """No new call may start yet: the job's running calls (or its workspace's) may spend
    what is left of a budget. The job waits for them; it does not fail."""


def call_is_final(call: ProviderCall) -> bool:
    """Does this call's answer hold the report? Read from the call itself, so a template
    changed mid-run cannot turn a research plan into a draft."""
    return call.step in ("report", "synthesize")


def _plan_questions(plan: ProviderCall) -> list[str]:
    try:
        questions = json.loads(plan.output.get("text") or "{}").get("questions", [])
    except (ValueError, AttributeError):
        return []
    return [q.strip() for q in questions if isinstance(q, str) and q.strip()][:MAX_RESEARCH_QUESTIONS]


def _answer(attempt: JobAttempt, function_call: dict) -> dict:
    if function_call.get("name") != "search_sources":
        result = {"error": f"Unknown function {function_call.get('name')!r}; only search_sources exists."}
    else:
        try:
            query = json.loads(function_call.get("arguments") or "{}").get("query", "")
        except (ValueError, AttributeError):
            query = ""
        result = {"passages": search_sources(attempt=attempt, query=str(query))} if query else {"error": "Give a query."}
    return {"type": "function_call_output", "call_id": function_call.get("call_id", ""), "output": json.dumps(result)}


def _calls(attempt: JobAttempt) -> list[ProviderCall]:
    return list(ProviderCall.objects.filter(attempt=attempt, orphan=False).exclude(status=CallStatus.LOST).order_by("id"))


def _questions_research(
    *, attempt: JobAttempt, calls: list[ProviderCall], parent: ProviderCall, questions: list[str], first_number: int
) -> tuple[list[Step], list[tuple[str, str]], bool]:
    """For questions numbered from `first_number`, each chained from `parent` (the plan): the
    steps that may start now, the notes of those finished, and whether all are finished."""
    steps: list[Step] = []
    notes: list[tuple[str, str]] = []
    of = first_number + len(questions) - 1
    for number, question in enumerate(questions, start=first_number):
        name = f"research-{number}"
        mine = [c for c in calls if c.step == name]
        done = [c for c in mine if c.status == CallStatus.COMPLETED]
        last = done[-1] if done else None
        if any(c.status in CallStatus.IN_FLIGHT and (last is None or c.id > last.id) for c in mine):
            continue  # in flight
        base = dict(name=name, question=question, number=number, of=of)
        if last is None:
            steps.append(Step(previous_response_id=parent.provider_response_id, **base))
            continue
        pending = last.output.get("function_calls") or []
        if not pending:
            notes.append((question, last.output.get("text") or ""))
            continue
        if len(done) > MAX_TOOL_ROUNDS:
            # It was told to answer without tools and still called one: not a model to wait for.
            raise ResearchLoop(f"The model kept calling tools in {name} instead of writing its notes.")
        steps.append(Step(
            previous_response_id=last.provider_response_id,
            input_items=tuple(_answer(attempt, fc) for fc in pending),
            tool_choice="none" if len(done) == MAX_TOOL_ROUNDS else "",
            **base,
        ))
    return steps, notes, len(notes) == len(questions)


def _once(calls: list[ProviderCall], name: str) -> tuple[ProviderCall | None, bool]:
    """A single step's completed call, and whether it is still to be started."""
    mine = [c for c in calls if c.step == name]
    completed = next((c for c in mine if c.status == CallStatus.COMPLETED), None)
    return completed, completed is None and not any(c.status in CallStatus.IN_FLIGHT for c in mine)


def _startable(*, job: ReportJob, attempt: JobAttempt, calls: list[ProviderCall]) -> list[Step]:
    """Every step of a multi-step attempt that may start now, read from its calls: the plan;
    then each question not yet started or whose function calls await an answer (questions
    run side by side, each chained from the plan); with a follow-up round, once the notes are
    in, the gaps they leave, and those questions; then the synthesis. A failed step starts
    again; a step in flight is waited for."""
    plan, plan_due = _once(calls, "plan")
    if plan is None:
        return [Step(name="plan", previous_response_id=previous_draft_response_id(job=job, attempt=attempt))] if plan_due else []
    questions = _plan_questions(plan)
    steps, notes, finished = _questions_research(attempt=attempt, calls=calls, parent=plan, questions=questions, first_number=1)
    if not finished:
        return steps
    if job.run_template.follow_up_round:
        gaps, gaps_due = _once(calls, "gaps")
        if gaps is None:
            return [Step(name="gaps", previous_response_id=plan.provider_response_id, notes=tuple(notes))] if gaps_due else []
        more, more_notes, finished = _questions_research(
            attempt=attempt, calls=calls, parent=plan, questions=_plan_questions(gaps), first_number=len(questions) + 1
        )
        if not finished:
            return more
        notes += more_notes
    _, synthesis_due = _once(calls, "synthesize")
    # Chained from the plan (the sources and the questions), with each question's notes as
    # input: the research rounds themselves are not billed again.
    return [Step(name="synthesize", previous_response_id=plan.provider_response_id, notes=tuple(notes))] if synthesis_due else []


def next_step(*, job: ReportJob, attempt: JobAttempt) -> Step:
    """The step to start next, from what the attempt's calls have answered so far. Refused
    (BudgetReached) once the job's cost has reached a budget; held (BudgetHeld) while its
    running calls may reach one. Called in the transaction that records the call it starts."""
    reached = budget_reached(job=job)
    if reached:
        raise BudgetReached(reached)
    if job.run_template.mode != TemplateMode.MULTI_STEP:
        step = Step(previous_response_id=previous_draft_response_id(job=job, attempt=attempt))
    else:
        # Before the hold: a research loop fails the job whatever its budget.
        steps = _startable(job=job, attempt=attempt, calls=_calls(attempt))
        if not steps:
            raise StepRefused("No research step can start now: every step is in flight or done.")
        step = steps[0]
    held = budget_held(job=job, lock=True)
    if held:
        raise BudgetHeld(held)
    return step


def research_startable(*, job: ReportJob, attempt: JobAttempt) -> bool:
    """Can another step of this multi-step attempt start now (beside those in flight)?"""
    if job.run_template.mode != TemplateMode.MULTI_STEP:
        return False
    try:
        startable = bool(_startable(job=job, attempt=attempt, calls=_calls(attempt)))
    except StepRefused:
        return True  # starting it is what fails the job, with the reason
    # A step held by a budget is not startable: the running calls are followed meanwhile.
    return startable and (bool(budget_reached(job=job)) or not budget_held(job=job))


def call_to_follow(*, job: ReportJob, attempt: JobAttempt) -> ProviderCall | None:
    """The call the worker's check acts on. One response at a time: the latest. Multi-step
    research runs several: a call a dead worker left without a response id first; else, when
    a step can start, the latest finished call (the check then starts what comes next);
    else the running call whose end the provider announced, or the one due first on its own
    grid (research_check_in)."""
    calls = _calls(attempt)
    if not calls or all(c.step == "report" for c in calls):
        return calls[-1] if calls else None
    lost = [c for c in calls if c.status in (CallStatus.PENDING, CallStatus.UNCONFIRMED) and not c.provider_response_id]
    if lost:
        return lost[0]
    if research_startable(job=job, attempt=attempt):
        ended = [c for c in calls if c.status in (CallStatus.ERROR, CallStatus.FAILED)
                 or (c.status == CallStatus.COMPLETED and not call_is_final(c))]
        if ended:
            return ended[-1]
    running = _running(calls)
    if running:
        return min(running, key=lambda c: (_due(c)[0], c.id))
    return calls[-1]


def _running(calls: list[ProviderCall]) -> list[ProviderCall]:
    return [c for c in calls if c.status in (CallStatus.QUEUED, CallStatus.IN_PROGRESS) and c.provider_response_id]


def _due(call: ProviderCall) -> tuple[dt.datetime, float]:
    return response_due(
        created_at=call.created_at, last_checked_at=call.last_checked_at, notified_at=call.notified_at, watched=call.watched
    )


def response_due(
    *, created_at: dt.datetime, last_checked_at: dt.datetime | None, notified_at: dt.datetime | None, watched: bool
) -> tuple[dt.datetime, float]:
    """When a running response is next due on its own grid (the cadence counted from its
    start), and the grid's interval there. One whose end the provider has announced since it
    was last looked at (its webhook, or its stream) is due at once."""
    checked = last_checked_at or created_at
    if notified_at and notified_at >= checked:
        return notified_at, 0.0
    point, gap = grid_point(age=(checked - created_at).total_seconds(), watched=watched)
    return created_at + dt.timedelta(seconds=point), gap


def research_check_in(*, attempt: JobAttempt) -> float | None:
    """Seconds until the next check of a multi-step attempt, whose responses run side by side
    while a check looks at one (call_to_follow: the one due first): when the first of them is
    due on its own grid, up to POLL_JITTER of its interval late. So each response is checked
    on the cadence of a report of its own, however many run beside it. None when none runs."""
    running = _running(_calls(attempt))
    if not running:
        return None
    due, gap = min((_due(c) for c in running), key=lambda d: d[0])
    return max((due - timezone.now()).total_seconds(), 0.0) + random.uniform(0, settings.POLL_JITTER * gap)
