"""OpenAI's Responses API in background mode, behind the Provider contract.

The only module that sees SDK objects (openai_webhooks borrows the SDK's signature check and
nothing else): calls go through the official `openai` SDK, results come back as
`ResponseState`, failures as classified `ProviderError`s. Nothing is retried inside the SDK
(a retried POST can start a second background job; the worker owns retries).

With `stream=True` a create asks for the response as a stream and reads only its first event,
which carries the response; the response runs on in the background once the stream is
closed, and can be followed later from that event on (`ResponseStreams`, used by
jobs.worker.stream_watch). An account that may not stream the model is answered 400 before
anything starts: the provider then creates without streams from that moment.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import openai
from django.conf import settings
from openai.types.responses import Response


from .base import (
    FunctionCall,
    COMPLETED,
    FAILED,
    INCOMPLETE,
    IN_PROGRESS,
    QUEUED,
    ProviderError,
    ReportRequest,
    ResponseState,
    Usage,
    failure_class_for_code,
)

logger = logging.getLogger(__name__)

# Documented metadata limits: 16 pairs, keys up to 64 characters, values up to 512.
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512

# Error codes naming a policy or safety refusal contain one of these (the list of codes grows:
# "content_policy_violation", "bio_policy", "image_content_policy_violation", ...).

T = TypeVar("T")

WEB_SEARCH_SOURCES = "web_search_call.action.sources"


# The events that end a response's stream, and the status each one means. A cancelled response
# has none: its stream just closes.
_TERMINAL_EVENTS = {"response.completed": COMPLETED, "response.failed": FAILED, "response.incomplete": INCOMPLETE}
# An event's number, read from its JSON without decoding it: a key inside a string value would
# have its quotes escaped, so the first match is the event's own.
_SEQUENCE_NUMBER = re.compile(r'"sequence_number"\s*:\s*(\d+)')
_TERMINAL_TYPE = re.compile(r'"type"\s*:\s*"(response\.(?:completed|failed|incomplete))"')
# Error codes that refuse the request itself (the account or the key), whatever the request.
_ACCOUNT_CODES = frozenset({"insufficient_quota", "invalid_api_key", "invalid_organization", "account_deactivated"})


class OpenAIProvider:
    name = "openai"
    polls_concurrently = True  # a retrieve is one HTTP call; the SDK client is thread-safe

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0, stream: bool = False):
        # No SDK retries at all: a retried create can start a second background response,
        # and a retried poll would hold a worker through Retry-After waits. The worker
        # owns retries, with backoff kept on the job.
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=openai.Timeout(timeout, connect=min(timeout, 10.0)),
            max_retries=0,
        )
        self._create_client = self._client
        self._api_key, self._base_url = api_key, base_url
        # Are creates streams a worker can follow? Turned off for good by an account that may not.
        self.streams = stream

    def create(self, request: ReportRequest) -> ResponseState:
        params: dict[str, Any] = {
            "model": request.model,
            "input": [dict(item) for item in request.input_items] if request.input_items else request.input_text,
            "background": True,
            "store": True,  # without it a background response may be deleted ~10 minutes after it ends
            "metadata": request_metadata(request),
        }
        if request.output_schema:
            params["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": request.output_schema_name,
                    "schema": request.output_schema,
                    "strict": True,
                }
            }
        if request.instructions:
            params["instructions"] = request.instructions
        if request.previous_response_id:
            params["previous_response_id"] = request.previous_response_id
        if request.reasoning_effort:
            params["reasoning"] = {"effort": request.reasoning_effort}
        if request.tools:
            params["tools"] = [dict(tool) for tool in request.tools]
            if any(tool.get("type") == "web_search" for tool in request.tools):
                # Without it the search's results are not in the response: keep the provenance.
                params["include"] = [WEB_SEARCH_SOURCES]
        if request.max_output_tokens is not None:
            params["max_output_tokens"] = request.max_output_tokens
        if request.max_tool_calls is not None:
            params["max_tool_calls"] = request.max_tool_calls
        if request.tool_choice and request.tools:
            params["tool_choice"] = request.tool_choice
        if self.streams:
            try:
                return self._create_streamed(params)
            except ProviderError as exc:
                if not _stream_refused(exc):
                    raise
                # Refused before anything started (a 400), so creating again starts one response.
                logger.warning("OpenAI refused a streamed create (%s); creating without streams from now on", exc.message)
                self.streams = False
        return response_state(_call(self._create_client.responses.create, **params))

    def _create_streamed(self, params: dict[str, Any]) -> ResponseState:
        """Create as a stream and read up to the first event that carries the response."""
        events = _call(self._create_client.responses.create, **params, stream=True)
        try:
            if not events.response.headers.get("content-type", "").startswith("text/event-stream"):
                # A compatible endpoint that ignores `stream` answers with the response itself.
                events.response.read()
                return _plain_answer(events.response)
            for event in events:
                if event.type == "error":
                    raise stream_error(code=getattr(event, "code", None), message=getattr(event, "message", None))
                response = getattr(event, "response", None)
                if response is not None:
                    return response_state(response, stream_cursor=event.sequence_number)
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise provider_error(exc) from exc
        except openai.APIError as exc:
            # An error event the SDK raises itself (the shape with its fields under `error`).
            body = exc.body if isinstance(exc.body, dict) else {}
            raise stream_error(code=exc.code or body.get("code"), message=exc.message) from exc
        finally:
            events.close()
        raise ProviderError("OpenAI's stream ended before the response was created.", transient=True, code="connection_error")

    def stream_follower(self, *, timeout: float) -> ResponseStreams:
        """A follower of this account's response streams, for the asyncio loop that builds it."""
        return ResponseStreams(api_key=self._api_key, base_url=self._base_url, timeout=timeout)

    def delete(self, response_id: str) -> None:
        try:
            self._client.responses.delete(response_id)
        except openai.NotFoundError:
            return  # gone already (deleted, or past the provider's own retention)
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc

    def probe(self) -> None:
        """A 16-token, unstored create: a key or quota failure answers it as it would a report."""
        _call(
            self._create_client.responses.create,
            model=settings.PROVIDER_PROBE_MODEL, input="ping", max_output_tokens=16, store=False,
            metadata={"purpose": "reportdesk provider probe"},
        )

    def retrieve(self, response_id: str) -> ResponseState:
        return response_state(_call(self._client.responses.retrieve, response_id))

    def cancel(self, response_id: str) -> ResponseState:
        """Cancel, or return the final state when the response ended first (the API answers 400)."""
        try:
            response = self._client.responses.cancel(response_id)
        except openai.BadRequestError as exc:
            state = self.retrieve(response_id)
            if state.is_terminal:
                return state
            raise provider_error(exc) from exc
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc
        return response_state(response)


class ResponseStreams:
    """Follows background responses through their event streams, many at once in one asyncio
    event loop. Build it inside the loop that uses it: its HTTP pool belongs to that loop."""

    def __init__(self, *, api_key: str, base_url: str | None, timeout: float):
        # A stream may be silent for as long as the model thinks: the read timeout is the
        # whole time a stream is followed.
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=openai.Timeout(timeout, connect=min(timeout, 10.0)), max_retries=0,
        )

    async def events(self, response_id: str, *, after: int) -> AsyncIterator[tuple[int, str]]:
        """The response's events after number `after`, as (number, status): the terminal
        status (completed, failed, incomplete) for the event that ends it, else "". The
        stream of a cancelled response just closes; one cut short raises a transient
        ProviderError (follow on from the last number read).

        Read as raw lines: a response's stream carries every delta of its output, and only
        the event's name and number matter here, so no event is decoded into a model."""
        name, number, data = "", None, False
        try:
            async with self._client.responses.with_streaming_response.retrieve(
                response_id, stream=True, starting_after=after
            ) as raw:
                async for line in raw.iter_lines():
                    if not line:  # a blank line ends an event
                        if data:
                            yield (after if number is None else number), _TERMINAL_EVENTS.get(name, "")
                        name, number, data = "", None, False
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data = True
                        if number is None and (found := _SEQUENCE_NUMBER.search(line)):
                            number = int(found[1])
                        if not name and (found := _TERMINAL_TYPE.search(line)):
                            name = found[1]  # no `event:` line: the end named in the data
                if data:
                    yield (after if number is None else number), _TERMINAL_EVENTS.get(name, "")
        except openai.OpenAIError as exc:
            raise provider_error(exc) from exc
        except Exception as exc:  # the transport broke mid-stream (the SDK does not wrap a raw read)
            raise ProviderError(f"OpenAI's stream broke: {exc!r}", transient=True, code="connection_error") from exc

    async def aclose(self) -> None:
        await self._client.close()


def _plain_answer(http_response) -> ResponseState:
    """The response a create answered with as plain JSON, read as leniently as the SDK reads
    one: an endpoint that leaves out fields the schema requires must not lose the id."""
    try:
        body = http_response.json()
    except ValueError as exc:
        raise ProviderError("OpenAI's answer to the create was not JSON.", transient=True, code="connection_error") from exc
    try:
        return response_state(Response.model_validate(body))
    except ValueError:  # pydantic's ValidationError
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ProviderError("OpenAI's answer to the create named no response.", transient=True, code="connection_error") from None
        return ResponseState(id=body["id"], status=str(body.get("status") or QUEUED), model=str(body.get("model") or ""))


def _stream_refused(error: ProviderError) -> bool:
    """A 400 about streaming itself (an organization not verified to stream the model)."""
    return error.status_code == 400 and error.param == "stream"


def stream_error(*, code: str | None, message: str | None) -> ProviderError:
    """An `error` event in the stream of a create, before the event that carries the response.
    Classified as an HTTP error with the same code would be, except that whether a response
    started is unknown: what is not known to refuse the request as a whole is ambiguous (a
    connection error, which the worker reconciles before it creates again)."""
    code = str(code or "")
    message = f"OpenAI's stream reported an error: {message or code or 'no detail'}"
    if failure_class_for_code(code) == "policy_block":
        return ProviderError(message, transient=False, code=code, failure_class="policy_block")
    if code in _ACCOUNT_CODES:
        return ProviderError(message, transient=False, code=code)
    if code == "rate_limit_exceeded":
        return ProviderError(message, transient=True, code=code, status_code=429)
    return ProviderError(message, transient=True, code="connection_error")


def request_metadata(request: ReportRequest) -> dict[str, str]:
    """Our ids first, then the request's own metadata, within the API's limits."""
    pairs = {"job_id": request.job_id, "attempt": str(request.attempt), "step": request.step}
    for key, value in request.metadata.items():
        key = str(key)
        if key in pairs:
            continue
        if len(key) > METADATA_MAX_KEY or len(pairs) >= METADATA_MAX_PAIRS:
            logger.warning("Metadata %r not sent for job %s: over the API's limits", key, request.job_id)
            continue
        pairs[key] = "" if value is None else str(value)
    return {key: value[:METADATA_MAX_VALUE] for key, value in pairs.items()}


def _call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return method(*args, **kwargs)
    except openai.OpenAIError as exc:
        raise provider_error(exc) from exc


# --- SDK objects → contract ----------------------------------------------------------------------


def response_state(response: Response, *, stream_cursor: int | None = None) -> ResponseState:
    error = response.error
    incomplete = response.incomplete_details
    return ResponseState(
        id=response.id,
        status=response.status or _inferred_status(response),
        model=response.model or "",
        output_text=response.output_text if response.output else "",
        error_code=str(error.code or "") if error else "",
        error_message=(error.message or "") if error else "",
        incomplete_reason=(incomplete.reason or "") if incomplete else "",
        usage=_usage(response),
        function_calls=tuple(
            FunctionCall(call_id=item.call_id, name=item.name, arguments=item.arguments or "{}")
            for item in response.output or ()
            if getattr(item, "type", "") == "function_call"
        ),
        refusal="\n".join(
            part.refusal
            for item in response.output or ()
            if getattr(item, "type", "") == "message"
            for part in item.content or ()
            if getattr(part, "type", "") == "refusal" and part.refusal
        ),
        url_citations=_url_citations(response),
        web_sources=_web_sources(response),
        raw=response.model_dump(mode="json", warnings=False),
        stream_cursor=stream_cursor,
        completed_at=_when(response.completed_at),
    )


def _when(unixtime: float | None) -> dt.datetime | None:
    if not unixtime:
        return None
    try:
        return dt.datetime.fromtimestamp(unixtime, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):  # not a time: as if it were not given
        return None


def _url_citations(response: Response) -> tuple[dict, ...]:
    citations = []
    for item in response.output or ():
        if getattr(item, "type", "") != "message":
            continue
        for part in item.content or ():
            for note in getattr(part, "annotations", None) or ():
                if getattr(note, "type", "") == "url_citation":
                    citations.append({"url": note.url, "title": note.title or ""})
    return tuple(citations)


def _web_sources(response: Response) -> tuple[str, ...]:
    """The URLs the web search returned (`action.sources`) or opened (`action.url`), in order."""
    urls: list[str] = []
    for item in response.output or ():
        if getattr(item, "type", "") != "web_search_call":
            continue
        action = getattr(item, "action", None)
        urls += [source.url for source in getattr(action, "sources", None) or () if getattr(source, "url", None)]
        if getattr(action, "url", None):
            urls.append(action.url)
    return tuple(dict.fromkeys(urls))


def _inferred_status(response: Response) -> str:
    """`status` is optional in the schema: read the outcome from the other fields, else keep polling."""
    if response.error:
        return FAILED
    if response.incomplete_details:
        return INCOMPLETE
    if response.completed_at:
        return COMPLETED
    return IN_PROGRESS


def _usage(response: Response) -> Usage:
    usage = response.usage
    input_details = usage.input_tokens_details if usage else None
    output_details = usage.output_tokens_details if usage else None
    items = list(response.output or ())
    return Usage(
        input_tokens=(usage.input_tokens or 0) if usage else 0,
        cached_tokens=(input_details.cached_tokens or 0) if input_details else 0,
        cache_write_tokens=(getattr(input_details, "cache_write_tokens", 0) or 0) if input_details else 0,
        output_tokens=(usage.output_tokens or 0) if usage else 0,
        reasoning_tokens=(output_details.reasoning_tokens or 0) if output_details else 0,
        tool_calls=sum(1 for item in items if (getattr(item, "type", "") or "").endswith("_call")),
        web_searches=_web_searches(response, items),
    )


def _web_searches(response: Response, items: list) -> int:
    """Billable searches: `tool_usage.web_search.num_requests` when the API reports it, else
    the `web_search_call` items whose action is a search (opening a page or finding in it is
    part of a search already paid for)."""
    tool_usage = response.tool_usage
    web_usage = tool_usage.web_search if tool_usage else None
    if web_usage and web_usage.num_requests is not None:
        return web_usage.num_requests
    return sum(
        1
        for item in items
        if getattr(item, "type", "") == "web_search_call"
        and getattr(getattr(item, "action", None), "type", "search") == "search"
    )


def provider_error(exc: openai.OpenAIError) -> ProviderError:
    """Classify an SDK exception: may a later retry of the same request succeed?"""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("OpenAI request timed out.", transient=True, code="timeout")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"Could not reach OpenAI: {exc}", transient=True, code="connection_error")
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(str(exc) or type(exc).__name__, transient=False)
    code = exc.code or ""
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    message = str(body.get("message") or exc.message)
    failure_class = failure_class_for_code(code)
    if failure_class == "policy_block":
        transient = False
    elif isinstance(exc, openai.RateLimitError):
        transient = "insufficient_quota" not in (code, exc.type)
        code = code or (exc.type or "")
    else:
        transient = status >= 500 or status in (408, 409)
        if isinstance(exc, openai.BadRequestError):
            failure_class = "validation_error"
    return ProviderError(
        message,
        transient=transient,
        code=code,
        status_code=status,
        retry_after=_retry_after(exc.response.headers),
        failure_class=failure_class,
        param=str(body.get("param") or getattr(exc, "param", None) or ""),
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
