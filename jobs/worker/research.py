"""Multi-step research: which step of an attempt runs next.

plan (research questions) → research each question (the model may call the
`search_sources` function tool; the worker answers with `function_call_output`) →
synthesize. Each step is one background response chained to the one before it with
`previous_response_id`, and each is a ProviderCall; the next step is read from what the
attempt's completed calls answered, so a worker that died between steps resumes here.
"""

from __future__ import annotations

import json

from ..budgets import budget_reached
from ..models import CallStatus, FailureClass, JobAttempt, ProviderCall, ReportJob, TemplateMode
from ..report_schema import MAX_RESEARCH_QUESTIONS
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


def next_step(*, job: ReportJob, attempt: JobAttempt) -> Step:
    """The step to run next, from what the attempt's calls have answered so far. Refused
    (BudgetReached) once the job's cost has reached a budget."""
    reached = budget_reached(job=job)
    if reached:
        raise BudgetReached(reached)
    first = Step(previous_response_id=previous_draft_response_id(job=job, attempt=attempt))
    if job.template.mode != TemplateMode.MULTI_STEP:
        return first
    done = list(ProviderCall.objects.filter(attempt=attempt, status=CallStatus.COMPLETED).order_by("id"))
    if not done:
        return Step(name="plan", previous_response_id=first.previous_response_id)
    last = done[-1]
    questions = _plan_questions(done[0])
    number = int(last.step.split("-")[1]) if last.step.startswith("research-") else 0
    pending = last.output.get("function_calls") or []
    if pending:
        rounds = sum(1 for c in done if c.step == last.step)
        if rounds > MAX_TOOL_ROUNDS:
            # It was told to answer without tools and still called one: not a model to wait for.
            raise ResearchLoop(f"The model kept calling tools in {last.step} instead of writing its notes.")
        return Step(
            name=last.step, previous_response_id=last.provider_response_id,
            question=questions[number - 1] if 0 < number <= len(questions) else "", number=number, of=len(questions),
            input_items=tuple(_answer(attempt, fc) for fc in pending),
            tool_choice="none" if rounds == MAX_TOOL_ROUNDS else "",
        )
    if number < len(questions):
        return Step(
            name=f"research-{number + 1}", previous_response_id=last.provider_response_id,
            question=questions[number], number=number + 1, of=len(questions),
        )
    return Step(name="synthesize", previous_response_id=last.provider_response_id)
