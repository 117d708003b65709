"""The built-in local provider: what runs when no OPENAI_API_KEY is set.

It keeps the provider's background contract — a create returns at once with `queued`, the
response moves to `in_progress` and then to a terminal status over a few seconds, and it can
be cancelled — and writes a real extractive report from the job's own sources
(local_engine). In multi-step research it plans questions from the required sections, calls
the search_sources function tool in each research step and writes notes from its answer. Its responses live in the database (LocalResponse) so the web app and
every worker process see the same one.

Faults can be injected for demos and tests: settings.LOCAL_PROVIDER_FAULT for every
response, or a marker in the topic such as "[local:fail]". Faults: fail, incomplete,
policy, create_transient, create_error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets

from django.conf import settings
from django.utils import timezone

from .base import (
    CANCELLED,
    COMPLETED,
    FunctionCall,
    FAILED,
    IN_PROGRESS,
    INCOMPLETE,
    QUEUED,
    ProviderError,
    ReportRequest,
    ResponseState,
    SourceDoc,
    Usage,
)
from .local_engine import build_extractive_report, estimate_tokens

_FAULT_MARKER = re.compile(r"\[local:([a-z_]+)\]")


def _request_to_json(request: ReportRequest) -> dict:
    data = dataclasses.asdict(request)
    for source in data["sources"]:
        source["published"] = source["published"].isoformat() if source["published"] else None
    return data


def _request_from_json(data: dict) -> ReportRequest:
    sources = tuple(
        SourceDoc(**{**s, "published": dt.date.fromisoformat(s["published"]) if s.get("published") else None})
        for s in data.get("sources", [])
    )
    fields = {f.name for f in dataclasses.fields(ReportRequest)}
    values = {k: v for k, v in data.items() if k in fields}
    values.update(
        sources=sources,
        required_sections=tuple(values.get("required_sections", ())),
        tools=tuple(values.get("tools", ())),
        input_items=tuple(values.get("input_items", ())),
    )
    return ReportRequest(**values)


class LocalProvider:
    name = "local"
    polls_concurrently = False  # its responses live in the database

    def __init__(self, *, seconds: float | None = None, fault: str | None = None):
        self.seconds = settings.LOCAL_PROVIDER_SECONDS if seconds is None else seconds
        self.fault = settings.LOCAL_PROVIDER_FAULT if fault is None else fault

    def _fault_for(self, request: ReportRequest) -> str:
        marker = _FAULT_MARKER.search(request.topic)
        return marker.group(1) if marker else self.fault

    def create(self, request: ReportRequest) -> ResponseState:
        from jobs.models import LocalResponse

        fault = self._fault_for(request)
        if fault == "create_transient":
            raise ProviderError("Local provider: simulated overload (HTTP 503).", transient=True, code="server_error", status_code=503)
        if fault == "create_error":
            raise ProviderError(
                "Local provider: simulated invalid request (HTTP 400).", transient=False,
                code="invalid_request_error", status_code=400, failure_class="validation_error",
            )
        now = timezone.now()
        response = LocalResponse.objects.create(
            id=f"resp_local_{secrets.token_hex(12)}",
            model=request.model,
            request=_request_to_json(request),
            created_at=now,
            starts_at=now + dt.timedelta(seconds=self.seconds / 4),
            completes_at=now + dt.timedelta(seconds=self.seconds),
            fault=fault,
        )
        return self._state(response, now=now)

    def retrieve(self, response_id: str) -> ResponseState:
        return self._state(self._get(response_id), now=timezone.now())

    def cancel(self, response_id: str) -> ResponseState:
        from jobs.models import LocalResponse

        now = timezone.now()
        response = self._get(response_id)
        if self._status(response, now=now) in (QUEUED, IN_PROGRESS):
            LocalResponse.objects.filter(pk=response.pk, cancelled_at__isnull=True).update(cancelled_at=now)
            response.refresh_from_db()
        return self._state(response, now=now)

    def probe(self) -> None:
        """The local engine has no account to fail."""

    def delete(self, response_id: str) -> None:
        from jobs.models import LocalResponse

        LocalResponse.objects.filter(pk=response_id).delete()

    def _get(self, response_id: str):
        from jobs.models import LocalResponse

        response = LocalResponse.objects.filter(pk=response_id).first()
        if response is None:
            raise ProviderError(f"No response found with id '{response_id}'.", transient=False, code="not_found", status_code=404)
        return response

    @staticmethod
    def _status(response, *, now) -> str:
        if response.cancelled_at is not None:
            return CANCELLED
        if now < response.starts_at:
            return QUEUED
        if now < response.completes_at:
            return IN_PROGRESS
        return {"fail": FAILED, "incomplete": INCOMPLETE, "policy": FAILED}.get(response.fault, COMPLETED)

    def _state(self, response, *, now) -> ResponseState:
        from jobs.models import LocalResponse

        status = self._status(response, now=now)
        request = _request_from_json(response.request)
        input_tokens = estimate_tokens(request.instructions + request.input_text)
        if status != COMPLETED:
            error_code, error_message, incomplete = "", "", ""
            if status == FAILED and response.fault == "policy":
                error_code, error_message = "content_policy_violation", "Local provider: simulated policy refusal."
            elif status == FAILED:
                error_code, error_message = "server_error", "Local provider: simulated server error."
            elif status == INCOMPLETE:
                incomplete = "max_output_tokens"
            usage = Usage(input_tokens=input_tokens) if status in (FAILED, INCOMPLETE) else Usage()
            return ResponseState(
                id=response.id, status=status, model=response.model, error_code=error_code,
                error_message=error_message, incomplete_reason=incomplete, usage=usage,
            )
        function_calls = _function_calls(response.id, request)
        if not response.output_text and not function_calls:
            LocalResponse.objects.filter(pk=response.pk, output_text="").update(output_text=_answer(request))
            response.refresh_from_db(fields=["output_text"])
        return ResponseState(
            id=response.id,
            status=COMPLETED,
            completed_at=response.completes_at,
            model=response.model,
            output_text=response.output_text,
            function_calls=function_calls,
            usage=Usage(
                input_tokens=input_tokens,
                output_tokens=estimate_tokens(response.output_text),
                tool_calls=len(function_calls),
            ),
        )


def _question(request: ReportRequest) -> str:
    first_line = request.input_text.split("\n", 1)[0]
    return first_line.split(": ", 1)[1] if ": " in first_line else request.topic


def _function_calls(response_id: str, request: ReportRequest) -> tuple[FunctionCall, ...]:
    """A research step first searches the sources, as a model would, through the function tool."""
    if not request.step.startswith("research-") or request.input_items:
        return ()
    arguments = json.dumps({"query": _question(request)})
    return (FunctionCall(call_id=f"call_{response_id[-16:]}", name="search_sources", arguments=arguments),)


def _answer(request: ReportRequest) -> str:
    """The text a step answers with: the plan's questions, a research step's notes, or the report."""
    if request.step == "plan":
        sections = request.required_sections or (request.topic,)
        questions = [f"What do the sources say about {s.lower()} for {request.topic}?" for s in sections[:3]]
        return json.dumps({"questions": questions}, ensure_ascii=False)
    if request.step.startswith("research-"):
        lines = [f"Notes on: {_question(request)}"]
        for item in request.input_items:
            try:
                passages = json.loads(item.get("output", "{}")).get("passages", [])
            except (ValueError, AttributeError):
                passages = []
            lines += [f"- {p['text']} [{p['source_id']}]" for p in passages if isinstance(p, dict) and "text" in p]
        if len(lines) == 1:
            lines.append("- The sources say nothing on this question.")
        return "\n".join(lines)
    return json.dumps(build_extractive_report(request), ensure_ascii=False)
