"""The provider contract: typed requests and results, no SDK objects, no database access.

Every provider (OpenAI's Responses API in background mode, the built-in local engine) takes a
`ReportRequest`, starts one background response, and reports on it as a `ResponseState`.
Errors are `ProviderError`, already classified: `transient` says whether retrying the same
request later may succeed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

# Provider status values (OpenAI spells "cancelled"; our job status is "canceled").
QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
INCOMPLETE = "incomplete"
ACTIVE_STATUSES = frozenset({QUEUED, IN_PROGRESS})
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED, INCOMPLETE})


_POLICY_MARKERS = ("policy", "safety", "moderation", "content_filter")
# Codes that name a usage-policy block without one of the markers above: `invalid_prompt`
# is what the API answers when a prompt was flagged under its usage policy.
_POLICY_CODES = frozenset({"invalid_prompt"})
# Error codes of a failed response that may succeed if the same request is sent again.
TRANSIENT_RESPONSE_ERRORS = frozenset({"server_error", "rate_limit_exceeded", "timeout"})


def failure_class_for_code(code: str | None) -> str:
    """The job failure class for a provider error code (from an HTTP error or a failed response)."""
    code = (code or "").lower()
    if code in _POLICY_CODES or any(marker in code for marker in _POLICY_MARKERS):
        return "policy_block"
    return "provider_error"


@dataclass(frozen=True)
class SourceDoc:
    """One source as the model sees it: `sid` is its stable id within the job (S1…Sn)."""

    sid: str
    title: str
    text: str
    url: str = ""
    kind: str = "text"
    published: dt.date | None = None


@dataclass(frozen=True)
class ReportRequest:
    """Everything one background response needs. Built by jobs.worker.prompt from a job attempt."""

    job_id: str  # the job's public id
    attempt: int
    step: str  # "report" for single-response mode; "plan", "research-N", "synthesize"
    model: str
    instructions: str  # template instructions + audience + citation rules
    input_text: str  # the topic, the sources S1…Sn, reviewer notes for a revision
    topic: str
    audience: str
    sources: tuple[SourceDoc, ...]
    # JSON schema the answer must follow (strict structured output); {} for free text.
    output_schema: dict
    required_sections: tuple[str, ...] = ()
    reasoning_effort: str = ""  # "", "low", "medium", "high"
    previous_response_id: str | None = None
    revision_notes: str = ""
    tools: tuple[dict, ...] = ()
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None  # built-in tool calls (web searches) per response
    tool_choice: str = ""  # "" leaves the model free; "none": it must answer without tools
    metadata: dict = field(default_factory=dict)
    output_schema_name: str = "research_report"  # jobs.report_schema.REPORT_SCHEMA_NAME
    # Input items sent instead of input_text (function_call_output answers in multi-step mode).
    input_items: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0  # input tokens read from the prompt cache
    cache_write_tokens: int = 0  # input tokens written to the prompt cache
    output_tokens: int = 0  # reasoning tokens included
    reasoning_tokens: int = 0
    tool_calls: int = 0  # tool call items of every kind (web search actions, function calls)
    web_searches: int = 0  # billable web searches: `search` actions, not page opens


@dataclass(frozen=True)
class FunctionCall:
    """A function tool call the model made; the worker answers it in a follow-up response."""

    call_id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class ResponseState:
    """A provider response as we last saw it."""

    id: str
    status: str  # one of the provider status values above
    model: str = ""
    output_text: str = ""
    error_code: str = ""
    error_message: str = ""
    incomplete_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    function_calls: tuple[FunctionCall, ...] = ()
    # The model's refusal (a `refusal` content part instead of the structured answer).
    refusal: str = ""
    # Web provenance: the `url_citation` annotations of the answer ({url, title}), and every
    # URL the web search tool returned or opened (the pages the model could have read).
    url_citations: tuple[dict, ...] = ()
    web_sources: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict)
    # A response created as a stream: the number of the last event read, from which its
    # stream can be followed (None: it cannot be streamed).
    stream_cursor: int | None = None
    # When the provider says the response completed (its `completed_at`; only a completed
    # response has one). The lag of a draft is measured from it.
    completed_at: dt.datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class ProviderError(Exception):
    """A provider call that did not succeed.

    `transient` errors (rate limits, 5xx, timeouts, dropped connections) may succeed later;
    the rest (quota, authentication, bad request, policy) will not. `failure_class` is the
    job failure class the error maps to when it ends the job.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        code: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
        failure_class: str = "provider_error",
        param: str = "",
    ):
        super().__init__(message)
        self.param = param  # the request parameter the provider named, if any
        self.message = message
        self.transient = transient
        self.code = code
        self.status_code = status_code
        self.retry_after = retry_after
        self.failure_class = failure_class


class Provider(Protocol):
    name: str
    # May retrieves run from threads of their own, many at a time? True only when a retrieve
    # touches no database (jobs.worker.batch polls such providers concurrently).
    polls_concurrently: bool

    def create(self, request: ReportRequest) -> ResponseState:
        """Start a background response. Never retried inside: the worker owns retries."""

    def retrieve(self, response_id: str) -> ResponseState: ...

    def cancel(self, response_id: str) -> ResponseState:
        """Best-effort cancel. A response that is already terminal is returned, not raised."""

    def delete(self, response_id: str) -> None:
        """Delete the provider's stored copy. An already deleted or unknown response is not an error."""

    def probe(self) -> None:
        """The smallest request that proves the account works (key and quota); raises ProviderError."""
