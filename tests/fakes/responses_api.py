"""A loopback fake of OpenAI's Responses API, served over real HTTP so the real SDK talks to it.

Point `openai.OpenAI(base_url=fake.base_url)` (or our `OpenAIProvider`) at a running fake:

    with ResponsesAPIFake(latency=0.1) as fake:
        fake.script_next(Script.failed(code="server_error"))        # the next create
        fake.inject("create", Fault.rate_limit(retry_after=7))       # the next create request
        ...
        assert fake.count("create") == 1
        assert fake.validation_errors == []

Endpoints: `POST /v1/responses`, `GET /v1/responses/{id}` (`?stream=true&starting_after=N` to
stream), `POST /v1/responses/{id}/cancel`, `DELETE /v1/responses/{id}`. Bodies are shaped like the
real `Response` object and errors like OpenAI's `{"error": {"message", "type", "param", "code"}}`;
every reply carries `x-request-id`.

How a test drives it:
- **Scripts** (`Script`) say how a created response behaves: the statuses it goes through (one
  step per retrieve, or one step per `step_seconds` of the fake's clock), its final output text
  (by default a JSON report matching REPORT_SCHEMA built from the request's input), the error of
  a `failed` or the reason of an `incomplete`, usage numbers, tool calls, and what a cancel does.
  `fake.script_next(script)` queues a script for the next create; `fake.default_script` is used
  when the queue is empty. `fake.set_status(id, status)` forces a status on an existing response.
- **Faults** (`Fault`) are queued per endpoint with `fake.inject(endpoint, fault, times=n)` and
  consumed one per request to that endpoint: HTTP errors (429 with Retry-After, insufficient
  quota, 500, 401, 400, any status), a delay longer than the client's timeout, a dropped
  connection, a stream cut after some events, a stream whose only event is an `error` event
  (`Fault.error_event`). `fake.latency` seconds are added to every request.
  Mind the SDK's own retries: a client with the default `max_retries=2` retries retrieve/cancel
  on 429/5xx/timeouts and honours `Retry-After`, so inject `times=3` to make such a call fail for
  good.
- **Recording**: `fake.requests` (every request: method, path, endpoint, lower-cased headers,
  parsed JSON body), `fake.count(endpoint)`, `fake.responses` (created responses by id),
  `fake.validation_errors` (rejected create bodies) and `fake.internal_errors` (bugs in the fake
  itself). A fixture should assert both lists are empty at teardown.

Create bodies are validated against `#/components/schemas/CreateResponse` of the OpenAPI document
(a copy of the official document beside this module, openai/openai-openapi at f85dbe223d40), every top-level key
must be one of CreateResponse's properties, and the limits the document states only in prose
(metadata size, json_schema name) are checked as well. See `validate_create_request`.

Streaming (Server-Sent Events), as the API streams background responses: a create with
`"stream": true` answers `text/event-stream`, and `GET /v1/responses/{id}?stream=true&starting_after=N`
replays a streamed response's events after sequence number N, then follows it live. Each response
created with `stream: true` keeps an append-only event log (`fake.events_of(id)`): `response.created`
(sequence_number 0), then one event per status the response is seen to enter (`response.queued`,
`response.in_progress`, and the terminal `response.completed` / `response.failed` /
`response.incomplete`); a cancelled response has no event, its streams just end. A script with
`text_deltas=k` also logs k `response.output_text.delta` events after `response.in_progress`
(before the terminal event in any case), numbered in the same sequence. A stream closes the
connection after the terminal event, on cancel or delete, or when the client hangs up. Each event
is an `event: <type>` line, a `data: <json>` line and a blank line, in a chunked body, so a stream
cut by `Fault.cut(after_events=k)` ends without the closing chunk: the client sees a broken transfer.
`fake.open_streams` counts the streams being written. Every event is validated against the
document's schema for its type (`validate_stream_event`); problems go to `fake.validation_errors`.

Webhooks: `sign_webhook` signs a body the Standard Webhooks way (as OpenAI does) and
`webhook_delivery` builds a whole signed `response.*` event for a response id.

No pytest imports: the benchmark script uses this module too.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import json
import re
import secrets
import select
import socket
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

OPENAPI_PATH = Path(__file__).with_name("openai-openapi.json")

# Endpoint names, used by `inject`, `count` and `RecordedRequest.endpoint`.
CREATE = "create"
RETRIEVE = "retrieve"
CANCEL = "cancel"
DELETE = "delete"
UNKNOWN = "unknown"
ENDPOINTS = (CREATE, RETRIEVE, CANCEL, DELETE)

QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
INCOMPLETE = "incomplete"
ACTIVE = frozenset({QUEUED, IN_PROGRESS})
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED, INCOMPLETE})

# The stream event announcing each status (`ResponseStreamEvent`); a cancel has none.
STATUS_EVENTS = {
    QUEUED: "response.queued",
    IN_PROGRESS: "response.in_progress",
    COMPLETED: "response.completed",
    FAILED: "response.failed",
    INCOMPLETE: "response.incomplete",
}
CREATED_EVENT = "response.created"
# How often an open stream looks at its response: status changes have no hook of their own
# (time scripts move with the clock), so a stream polls, under the fake's lock.
STREAM_POLL_SECONDS = 0.02

# What a cancel of an active response does (`Script.cancel_result`).
CANCEL_HONOURED = "cancelled"  # the response ends cancelled
CANCEL_LOSES_RACE = "completed"  # it finished first: the cancel call returns it completed
CANCEL_REVERTED = "cancelled_then_completed"  # the cancel says cancelled, later reads say completed

_METADATA_MAX_PAIRS = 16
_METADATA_MAX_KEY = 64
_METADATA_MAX_VALUE = 512
_FORMAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --- Request validation against the OpenAPI document -------------------------------------------


def _oneof_as_anyof(node: Any) -> Any:
    """Copy of `node` with every `oneOf` read as `anyOf`.

    The document's `oneOf`s rely on OpenAPI `discriminator`s, which JSON Schema ignores, and
    several alternatives overlap (an input message `{"role": "user", "content": [...]}` matches
    both `EasyInputMessage` and `InputMessage`), so a strict `oneOf` rejects valid requests.
    """
    if isinstance(node, dict):
        return {("anyOf" if k == "oneOf" else k): _oneof_as_anyof(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_oneof_as_anyof(v) for v in node]
    return node


@dataclass(frozen=True)
class _OpenAPISchemas:
    create_request: Draft202012Validator
    create_keys: frozenset[str]
    response: Draft202012Validator
    components: dict  # the document's component schemas, for the nested-key walk
    stream_events: Mapping[str, Draft202012Validator]  # by event type, from ResponseStreamEvent


@functools.cache
def _openapi() -> _OpenAPISchemas:
    """Load the document and build the validators once per process (the document is 3.4 MB)."""
    if not OPENAPI_PATH.exists():
        raise FileNotFoundError(
            f"The OpenAI OpenAPI document is needed to validate requests: {OPENAPI_PATH} "
            "(it ships beside this module)."
        )
    document = _oneof_as_anyof(json.loads(OPENAPI_PATH.read_text()))
    base = "urn:openai-openapi"
    registry = Registry().with_resource(base, DRAFT202012.create_resource(document))
    schemas = document["components"]["schemas"]

    def properties(schema: dict) -> set[str]:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        names = set(schema.get("properties", {}))
        for keyword in ("allOf", "anyOf"):
            for sub in schema.get(keyword, []):
                names |= properties(sub)
        return names

    def validator(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{base}#/components/schemas/{name}"}, registry=registry)

    stream_events: dict[str, Draft202012Validator] = {}
    for branch in schemas["ResponseStreamEvent"]["anyOf"]:
        name = branch["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name].get("properties", {}).get("type", {}).get("enum", []):
            stream_events[kind] = validator(name)

    return _OpenAPISchemas(
        create_request=validator("CreateResponse"),
        create_keys=frozenset(properties(schemas["CreateResponse"])),
        response=validator("Response"),
        components=schemas,
        stream_events=stream_events,
    )


@dataclass(frozen=True)
class ValidationProblem:
    message: str
    param: str | None
    code: str


def _problem(body: Any) -> ValidationProblem | None:
    """The first reason the real API would reject this create body, or None."""
    if not isinstance(body, dict):
        return ValidationProblem("The request body must be a JSON object.", None, "invalid_type")
    schemas = _openapi()
    for key in body:
        if key not in schemas.create_keys:
            return ValidationProblem(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    error = best_match(schemas.create_request.iter_errors(body))
    if error is not None:
        error = _most_specific(error)
        param = ".".join(str(p) for p in error.absolute_path) or None
        return ValidationProblem(
            f"Invalid value at '{param or '(body)'}': {error.message[:500]}", param, "invalid_value"
        )
    nested = _unknown_nested_key(body, {"$ref": "#/components/schemas/CreateResponse"}, "")
    if nested:
        return ValidationProblem(f"Unknown parameter: '{nested}'.", nested, "unknown_parameter")
    return _prose_problem(body) or _model_problem(body)


def _resolve(schema: Any) -> Any:
    components = _openapi().components
    while isinstance(schema, dict) and "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _branches(schema: dict) -> list[dict]:
    """The alternatives and parts of a schema, flattened (anyOf/oneOf/allOf, refs resolved)."""
    schema = _resolve(schema)
    if not isinstance(schema, dict):
        return []
    out = [schema]
    for keyword in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(keyword, []):
            out += _branches(sub)
    return out


def _discriminator(branch: dict) -> list | None:
    kind = _resolve(branch.get("properties", {}).get("type", {}))
    if isinstance(kind, dict):
        if "enum" in kind:
            return kind["enum"]
        if "const" in kind:
            return [kind["const"]]
    return None


def _unknown_nested_key(instance: Any, schema: Any, path: str) -> str | None:
    """The first key, at any depth, that the document does not define where it stands.

    JSON Schema accepts unknown keys unless `additionalProperties` says otherwise, and the
    document rarely says so; the real API rejects them (`tools[0].allowed_domains` belongs in
    `tools[0].filters`). Objects that declare open maps (`additionalProperties`) are not walked.
    """
    if isinstance(instance, list):
        for index, item in enumerate(instance):
            items = [b.get("items") for b in _branches(schema) if b.get("type") == "array" and b.get("items")]
            for item_schema in items[:1]:
                found = _unknown_nested_key(item, item_schema, f"{path}[{index}]")
                if found:
                    return found
        return None
    if not isinstance(instance, dict):
        return None
    branches = [b for b in _branches(schema) if "properties" in b or b.get("additionalProperties") not in (None, False)]
    if any(b.get("additionalProperties") not in (None, False) for b in branches):
        return None  # an open map (metadata, a JSON schema, function parameters)
    if "type" in instance:
        typed = [b for b in branches if _discriminator(b) is not None]
        if typed:
            chosen = [b for b in typed if instance["type"] in _discriminator(b)]
            branches = chosen + [b for b in branches if _discriminator(b) is None and b in chosen]
            if not chosen:
                return None  # the schema validation above reports a wrong type
    properties: dict = {}
    for branch in branches:
        properties.update(branch.get("properties", {}))
    if not properties:
        return None
    for key, value in instance.items():
        here = f"{path}.{key}" if path else key
        if key not in properties:
            return here
        found = _unknown_nested_key(value, properties[key], here)
        if found:
            return found
    return None


# Models that take no `reasoning` settings, and the efforts each reasoning family accepts (as
# OpenAI's reasoning guide lists them). Prefixes, longest first.
_NON_REASONING = ("gpt-4.1", "gpt-4o", "gpt-4", "gpt-3.5", "chatgpt-")
_EFFORTS = (
    ("gpt-5-pro", {"high"}),
    ("gpt-5.2-pro", {"medium", "high", "xhigh"}),
    ("gpt-5.5-pro", {"medium", "high", "xhigh"}),
    ("gpt-5.6", {"none", "low", "medium", "high", "xhigh", "max"}),
    ("gpt-5.5", {"none", "low", "medium", "high", "xhigh"}),
    ("gpt-5.4", {"none", "low", "medium", "high", "xhigh"}),
    ("gpt-5.2", {"none", "low", "medium", "high", "xhigh"}),
    ("gpt-5.1", {"none", "low", "medium", "high"}),
    ("gpt-5", {"minimal", "low", "medium", "high"}),
    ("o", {"low", "medium", "high"}),
)


def _model_problem(body: dict) -> ValidationProblem | None:
    """What the API refuses because of the model: reasoning settings on a model without
    reasoning, or an effort the model does not offer."""
    model = str(body.get("model") or "")
    reasoning = body.get("reasoning") or {}
    if not reasoning:
        return None
    if model.startswith(_NON_REASONING) or model.endswith("-chat-latest"):
        return ValidationProblem(
            f"Unsupported parameter: 'reasoning.effort' is not supported with this model.",
            "reasoning.effort", "unsupported_parameter",
        )
    effort = reasoning.get("effort")
    for prefix, efforts in _EFFORTS:
        if model.startswith(prefix):
            if effort is not None and effort not in efforts:
                return ValidationProblem(
                    f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this model. "
                    f"Supported values are: {', '.join(sorted(efforts))}.",
                    "reasoning.effort", "unsupported_value",
                )
            return None
    return None


def strict_schema_problem(schema: Any, path: str = "") -> str | None:
    """Why strict structured output refuses this JSON schema, or None (the rules OpenAI's
    Structured Outputs guide states: objects closed and every property required, a root object,
    no root anyOf)."""
    if not path:
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return "the root must be an object"
        if "anyOf" in schema:
            return "the root must not be anyOf"
    if isinstance(schema, dict):
        kinds = schema.get("type")
        if kinds == "object" or (isinstance(kinds, list) and "object" in kinds) or "properties" in schema:
            if schema.get("additionalProperties") is not False:
                return f"In context={path or '()'}, 'additionalProperties' is required to be supplied and to be false"
            missing = set(schema.get("properties", {})) - set(schema.get("required", []))
            if missing:
                return f"In context={path or '()'}, 'required' is required to include every key; missing {sorted(missing)}"
        for key in ("properties", "$defs", "definitions"):
            for name, sub in (schema.get(key) or {}).items():
                found = strict_schema_problem(sub, f"{path}.{name}" if path else name)
                if found:
                    return found
        for key in ("items", "anyOf"):
            subs = schema.get(key)
            for sub in subs if isinstance(subs, list) else [subs] if subs else []:
                found = strict_schema_problem(sub, f"{path}.{key}" if path else key)
                if found:
                    return found
    return None


def _prose_problem(body: dict) -> ValidationProblem | None:
    """Limits the document states only in descriptions, which JSON Schema cannot check."""
    metadata = body.get("metadata") or {}
    if len(metadata) > _METADATA_MAX_PAIRS:
        return ValidationProblem(
            f"Invalid 'metadata': too many properties ({len(metadata)} > {_METADATA_MAX_PAIRS}).",
            "metadata",
            "object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > _METADATA_MAX_KEY:
            return ValidationProblem(
                f"Invalid 'metadata': key longer than {_METADATA_MAX_KEY} characters.",
                "metadata",
                "string_above_max_length",
            )
        if len(value) > _METADATA_MAX_VALUE:
            return ValidationProblem(
                f"Invalid 'metadata.{key}': string longer than {_METADATA_MAX_VALUE} characters.",
                f"metadata.{key}",
                "string_above_max_length",
            )
    text_format = (body.get("text") or {}).get("format") or {}
    if text_format.get("type") == "json_schema" and not _FORMAT_NAME.match(text_format["name"]):
        return ValidationProblem(
            "Invalid 'text.format.name': use a-z, A-Z, 0-9, '_' and '-', at most 64 characters.",
            "text.format.name",
            "invalid_value",
        )
    if text_format.get("type") == "json_schema" and text_format.get("strict"):
        reason = strict_schema_problem(text_format.get("schema"))
        if reason:
            return ValidationProblem(
                f"Invalid schema for response_format '{text_format['name']}': {reason}.",
                "text.format.schema",
                "invalid_json_schema",
            )
    for index, tool in enumerate(body.get("tools") or []):
        if tool.get("type") == "function" and tool.get("strict", True) and tool.get("parameters"):
            reason = strict_schema_problem(tool["parameters"])
            if reason:
                return ValidationProblem(
                    f"Invalid schema for function '{tool.get('name')}': {reason}.",
                    f"tools[{index}].parameters",
                    "invalid_function_parameters",
                )
    if body.get("background") and body.get("store") is False:
        return ValidationProblem(
            "Background mode requires store=true.", "store", "invalid_value"
        )
    return None


def _most_specific(error: ValidationError) -> ValidationError:
    """Follow a failed anyOf into the alternative the body was aiming at.

    Alternatives are told apart by their `type` property (the OpenAPI discriminator) or by
    the instance's JSON type (`{"type": "null"}`): follow the alternative that matched on those
    with the fewest errors; when none matched, the anyOf error itself is the best message.
    """

    def missed_discriminator(errors: list[ValidationError]) -> bool:
        return any(
            list(e.relative_path) == ["type"] or (e.validator == "type" and not e.relative_path)
            for e in errors
        )

    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        errors = min(branches.values(), key=lambda errs: (missed_discriminator(errs), len(errs)))
        if missed_discriminator(errors):
            break  # no alternative fits at all: "not valid under any of the given schemas"
        error = best_match(errors)
    return error


_DATED = re.compile(r"^(?P<base>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")


@functools.cache
def _snapshots() -> dict[str, str]:
    """Each model alias of the document's model list → its latest dated snapshot."""
    schemas = json.loads(OPENAPI_PATH.read_text())["components"]["schemas"]
    names: list[str] = []
    for name in ("ModelIdsShared", "ModelIdsResponses"):
        for branch in schemas[name]["anyOf"]:
            names += branch.get("enum", [])
    latest: dict[str, str] = {}
    for name in names:
        match = _DATED.match(name)
        if match and name > latest.get(match["base"], ""):
            latest[match["base"]] = name
    return latest


def model_snapshot(model: str) -> str:
    """The model a response reports: the alias's dated snapshot (gpt-5.2 → gpt-5.2-2025-12-11),
    as the real API answers, or the name as sent when it has none."""
    return _snapshots().get(model, model)


def validate_create_request(body: Any) -> list[str]:
    """The validation message for a create body, as a list (empty when the body is valid)."""
    problem = _problem(body)
    return [problem.message] if problem else []


def validate_response_body(body: Any) -> list[str]:
    """Messages for a body that does not match `#/components/schemas/Response` (empty when ok)."""
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message[:300]}"
        for e in _openapi().response.iter_errors(body)
    ]


def validate_stream_event(event: Any) -> list[str]:
    """Messages for an event that does not match the document's schema for its `type` (one of
    `ResponseStreamEvent`'s alternatives), empty when ok."""
    kind = event.get("type") if isinstance(event, dict) else None
    validator = _openapi().stream_events.get(kind) if isinstance(kind, str) else None
    if validator is None:
        return [f"type: {kind!r} is not a ResponseStreamEvent type"]
    return [
        f"{kind}: {'.'.join(str(p) for p in e.absolute_path) or '(event)'}: {e.message[:300]}"
        for e in validator.iter_errors(event)
    ]


# --- Default output: a report matching REPORT_SCHEMA ---------------------------------------------

_SOURCE_ID = re.compile(r"\bS(\d+)\b")


def _first_words(text: str, count: int = 12) -> str:
    """The first `count` words of `text`, spacing kept, so the quote stays verbatim."""
    match = re.match(rf"\s*((?:\S+\s+){{0,{count - 1}}}\S+)", text)
    return match.group(1) if match else ""


def _quote_for(sid: str, lines: list[str]) -> str:
    """A few words of the source's own text: the line after its marker, else the marker line."""
    marker = re.compile(rf"\b{sid}\b")
    for index, line in enumerate(lines):
        if not marker.search(line):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following and not _SOURCE_ID.search(following):
            return _first_words(following)
        return _first_words(marker.split(line, maxsplit=1)[1].strip(" ]):-=\t") or line)
    return ""


def build_report(input_text: str) -> dict:
    """A report that satisfies REPORT_SCHEMA, citing the source ids (S1…Sn) found in the input.

    Evidence quotes are copied from the input (the line after a source's id, or the rest of the
    id's line), so they are verbatim when the input lists each source's text after its id.
    """
    lines = [line.strip() for line in input_text.splitlines() if line.strip()]
    topic_line = next((line for line in lines if line.startswith("Topic:")), lines[0] if lines else "")
    topic = topic_line.removeprefix("Topic:").strip()[:120] or "the topic"
    sids = list(dict.fromkeys(f"S{n}" for n in _SOURCE_ID.findall(input_text)))[:5]
    cited = " ".join(f"[{sid}]" for sid in sids)
    return {
        "title": f"Report: {topic}",
        "executive_summary": f"A summary of what the sources say about {topic}. {cited}".strip(),
        "sections": [
            {
                "heading": "Findings",
                "body": f"The sources agree on the main points. {cited}".strip(),
                "citations": sids,
            }
        ],
        "evidence": [
            {"claim": f"{sid} supports the findings.", "source_id": sid, "quote": _quote_for(sid, lines)}
            for sid in sids
        ],
        "recommendations": ["Review the cited evidence before acting on it."],
        "open_questions": [] if sids else ["No sources were provided."],
        "source_notes": [{"source_id": sid, "note": "Used as evidence."} for sid in sids],
        "web_citations": [],
    }


def _input_text(body: dict) -> str:
    """The request's input as plain text, whether a string or a list of input items."""
    value = body.get("input", "")
    if isinstance(value, str):
        return value
    parts: list[str] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        for key in ("content", "output", "text"):
            part = item.get(key)
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, list):
                parts += [p.get("text", "") for p in part if isinstance(p, dict)]
    return "\n".join(parts)


# --- Webhooks (Standard Webhooks signing, as OpenAI signs them) ----------------------------------


def make_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_webhook(*, payload: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The headers OpenAI sends with a webhook: HMAC-SHA256 over "{id}.{timestamp}.{body}"."""
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + payload
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def webhook_delivery(
    response_id: str,
    event_type: str,
    *,
    secret: str,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed webhook as OpenAI would POST it: (raw body, headers). The event carries only the id."""
    now = int(time.time()) if timestamp is None else timestamp
    msg_id = msg_id or f"wh_{secrets.token_hex(12)}"
    payload = json.dumps(
        {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "type": event_type,
            "created_at": now,
            "data": {"id": response_id},
        }
    ).encode()
    headers = {"content-type": "application/json"}
    headers |= sign_webhook(payload=payload, secret=secret, msg_id=msg_id, timestamp=now)
    return payload, headers


# --- Scripts and faults --------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """How one created response behaves.

    `statuses` is the sequence the response goes through; the create returns the first one.
    With `advance="retrieve"` each retrieve moves one step (create → statuses[0], 1st retrieve →
    statuses[1], …); with `advance="time"` the status is statuses[elapsed // step_seconds] by the
    fake's clock. The last status sticks. The last status decides the outcome: `completed` and
    `incomplete` carry output and usage, `failed` carries `error`.
    """

    statuses: tuple[str, ...] = (QUEUED, IN_PROGRESS, COMPLETED)
    advance: str = "retrieve"  # "retrieve" | "time"
    step_seconds: float = 1.0
    # The final text: None → build_report(input); a str; or a callable(request body) -> str.
    output_text: str | Callable[[dict], str] | None = None
    error: Mapping[str, str] = field(
        default_factory=lambda: {"code": "server_error", "message": "The model failed to respond."}
    )
    incomplete_reason: str = "max_output_tokens"
    model: str | None = None  # None → the request's model as a dated snapshot, when the API has one
    # Usage; None → derived from the input and output lengths (about 4 characters a token).
    input_tokens: int | None = None
    cached_tokens: int = 0
    output_tokens: int | None = None
    reasoning_tokens: int = 0
    web_search_calls: int = 0  # web_search_call items whose action is a search
    page_opens: int = 0  # web_search_call items whose action opens a page (not billed)
    cache_write_tokens: int = 0
    function_calls: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON) function_call items
    # Billable searches reported as `tool_usage.web_search.num_requests` (newer API versions;
    # None → no `tool_usage`). Opening a page is a web_search_call item but not billable.
    billable_web_searches: int | None = None
    cancel_result: str = CANCEL_HONOURED  # CANCEL_HONOURED | CANCEL_LOSES_RACE | CANCEL_REVERTED
    # A structured-output refusal: the message holds a `refusal` part instead of the answer.
    refusal: str = ""
    # Web search: one `search` action that returned these (url, title) pages — listed in
    # `action.sources` only when the request asked for them with `include` — and the
    # `url_citation` annotations of the answer, (url, title) each.
    web_pages: tuple[tuple[str, str], ...] = ()
    url_citations: tuple[tuple[str, str], ...] = ()
    omit_status: bool = False  # drop the `status` key (it is optional in the schema)
    omit_usage: bool = False  # drop `usage` even when terminal
    # Streamed responses only: this many `response.output_text.delta` events, logged right after
    # `response.in_progress` (before the terminal event if the response skips in_progress), their
    # deltas consecutive pieces of the answer's text. Bodies and plain retrieves are unchanged.
    text_deltas: int = 0

    def __post_init__(self) -> None:
        if not self.statuses or any(s not in ACTIVE | TERMINAL for s in self.statuses):
            raise ValueError(f"Unknown statuses in {self.statuses!r}")
        if self.text_deltas < 0:
            raise ValueError("text_deltas must be 0 or more")
        if self.advance not in ("retrieve", "time"):
            raise ValueError(f"advance must be 'retrieve' or 'time', not {self.advance!r}")
        if self.cancel_result not in (CANCEL_HONOURED, CANCEL_LOSES_RACE, CANCEL_REVERTED):
            raise ValueError(f"Unknown cancel_result {self.cancel_result!r}")

    @classmethod
    def failed(
        cls, *, code: str = "server_error", message: str = "The model failed to respond.", **kwargs: Any
    ) -> Script:
        error = {"code": code, "message": message}
        return cls(statuses=(QUEUED, IN_PROGRESS, FAILED), error=error, **kwargs)

    @classmethod
    def incomplete(cls, *, reason: str = "max_output_tokens", **kwargs: Any) -> Script:
        return cls(statuses=(QUEUED, IN_PROGRESS, INCOMPLETE), incomplete_reason=reason, **kwargs)

    @classmethod
    def running(cls, **kwargs: Any) -> Script:
        """Never finishes on its own: for cancel tests and workers that must keep polling."""
        return cls(statuses=(QUEUED, IN_PROGRESS), **kwargs)


_HTTP = "http"
_DELAY = "delay"
_DROP = "drop"
_CUT = "cut"
_ERROR_EVENT = "error_event"

# The `error.type` of a nested stream error (`Fault.error_event(nested=True)`) by its code, as the
# API types the same codes in its HTTP errors (and as they have been seen in stream errors);
# other codes are taken for request errors.
_ERROR_TYPES = {
    "server_error": "server_error",
    "internal_error": "server_error",
    "service_unavailable": "service_unavailable_error",
    "server_is_overloaded": "service_unavailable_error",
    "rate_limit_exceeded": "requests",  # as `Fault.rate_limit`'s 429 (the API also says "tokens")
    "too_many_requests": "too_many_requests",
    "insufficient_quota": "insufficient_quota",
}


@dataclass(frozen=True)
class Fault:
    """A failure for one request to an endpoint. Build with the class methods."""

    kind: str
    status: int = 0
    error: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    processed: bool = False
    events: int = 0
    nested: bool = False

    @classmethod
    def http(
        cls,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Any HTTP error; the request is not processed."""
        error = {"message": message, "type": type, "param": param, "code": code}
        return cls(kind=_HTTP, status=status, error=error, headers=dict(headers or {}))

    @classmethod
    def rate_limit(cls, *, retry_after: float | None = 1, headers: Mapping[str, str] | None = None) -> Fault:
        extra = {"x-ratelimit-remaining-requests": "0", **(headers or {})}
        if retry_after is not None:
            extra["retry-after"] = f"{retry_after:g}"
        return cls.http(
            429,
            "Rate limit reached for requests. Please try again later.",
            type="requests",
            code="rate_limit_exceeded",
            headers=extra,
        )

    @classmethod
    def insufficient_quota(cls) -> Fault:
        return cls.http(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )

    @classmethod
    def server_error(cls, *, status: int = 500, headers: Mapping[str, str] | None = None) -> Fault:
        return cls.http(
            status,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
            headers=headers,
        )

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls.http(401, "Incorrect API key provided: sk-***.", code="invalid_api_key")

    @classmethod
    def bad_request(
        cls, message: str = "Invalid request.", *, code: str | None = None, param: str | None = None
    ) -> Fault:
        return cls.http(400, message, code=code, param=param)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Process the request, then wait `seconds` before answering (longer than a client timeout:
        the client gives up although the server did the work, e.g. created the response)."""
        return cls(kind=_DELAY, seconds=seconds)

    @classmethod
    def drop(cls, *, processed: bool = False) -> Fault:
        """Close the connection without an answer, before (or with `processed`, after) doing the work."""
        return cls(kind=_DROP, processed=processed)

    @classmethod
    def cut(cls, *, after_events: int) -> Fault:
        """A stream that breaks: write `after_events` events, then close the connection without
        ending the body, as a broken network would (the client can resume with `starting_after`).
        A request that is not answered with a stream is answered as usual."""
        if after_events < 0:
            raise ValueError("after_events must be 0 or more")
        return cls(kind=_CUT, events=after_events)

    @classmethod
    def error_event(
        cls,
        *,
        code: str = "server_error",
        message: str = "The server had an error while processing your request.",
        nested: bool = False,
    ) -> Fault:
        """A stream that fails: `200 text/event-stream` whose only event is an `error` event, then
        the stream's proper end (its final chunk).

        The event is the document's `ResponseErrorEvent`, `{"type": "error", "code", "message",
        "param": null, "sequence_number"}`; with `nested`, the shape the live API has been seen to
        send instead (off the document, so not checked against it): `{"type": "error", "error":
        {"type", "code", "message", "param": null}, "sequence_number"}`, its `error.type` derived
        from the code (`server_error`, `requests` for `rate_limit_exceeded`, `insufficient_quota`,
        …, else `invalid_request_error`).

        A streamed create fails before a response starts: none is created, the event's
        sequence_number is 0. A streaming retrieve leaves the response alone: the event's number is
        the one after `starting_after` (0 without it), and it is not added to the event log. A
        request refused anyway (an invalid body, an unknown id) gets its usual error, and a request
        that is not answered with a stream is answered as usual; either way the fault is used up.
        """
        kind = _ERROR_TYPES.get(code, "invalid_request_error")
        error = {"type": kind, "code": code, "message": message, "param": None}
        return cls(kind=_ERROR_EVENT, error=error, nested=nested)

    def _stream_event(self, sequence_number: int) -> dict:
        """The `error` event of an `error_event` fault, numbered `sequence_number`."""
        if self.nested:
            return {"type": "error", "error": dict(self.error), "sequence_number": sequence_number}
        return {
            "type": "error",
            "code": self.error["code"],
            "message": self.error["message"],
            "param": None,
            "sequence_number": sequence_number,
        }


# --- State ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    endpoint: str  # CREATE, RETRIEVE, CANCEL, DELETE or UNKNOWN
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, the raw text if not JSON, None if empty
    response_id: str | None  # the id in the path (retrieve, cancel, delete)
    at: float = 0.0  # wall-clock time (time.time()) the request arrived


@dataclass
class FakeResponse:
    """One created response. Read it through `fake.responses`; the fake owns its state."""

    id: str
    request: dict
    script: Script
    created_at: int
    started: float  # the fake's clock at creation
    retrieves: int = 0
    forced_status: str | None = None
    deleted: bool = False
    message_id: str = field(default_factory=lambda: f"msg_{secrets.token_hex(16)}")
    # Tokens of the chain before it (the previous response's input and output): a chained
    # request is billed for them again, as the API bills a previous_response_id's context.
    carried_tokens: int = 0
    # The stream event log of a response created with `stream: true` (empty otherwise): the
    # events in order, each one's sequence_number its index. Appended by `observe` only.
    events: list[dict] = field(default_factory=list, repr=False)
    _logged_step: int = field(default=-1, repr=False)  # the last step of the script the log passed
    _logged_status: str | None = field(default=None, repr=False)  # of the last status event, or cancelled
    _logged_deltas: bool = field(default=False, repr=False)  # the script's text deltas are in the log
    # Wall-clock time the response was first seen completed: its `completed_at`.
    _completed_wall: float | None = field(default=None, repr=False)

    @property
    def streamed(self) -> bool:
        """Created with `stream: true`: only such a response can be streamed again later."""
        return self.request.get("stream") is True

    @property
    def stream_ended(self) -> bool:
        """The log is final: it holds a terminal event, or the response was cancelled."""
        return self._logged_status in TERMINAL

    def _step(self, now: float) -> int:
        if self.script.advance == "time":
            step = int((now - self.started) / self.script.step_seconds)
        else:
            step = self.retrieves
        return min(step, len(self.script.statuses) - 1)

    def status(self, now: float) -> str:
        if self.forced_status:
            return self.forced_status
        return self.script.statuses[self._step(now)]

    def observe(self, now: float) -> list[dict]:
        """Bring the event log up to `now` and return the events added (the fake's lock held).

        Every status the script passed since the last look gets its event, in order, even when
        nobody looked in between (two retrieves, or several time steps, between two polls of a
        stream), so a stream never skips one. A forced status (`set_status`, cancel) is logged as
        it is; the fake looks just before forcing one, so the script's steps up to then are in.
        The script's `text_deltas` follow `response.in_progress`, or precede the terminal event
        when the response never showed in_progress. Once the log is final (a terminal event, or a
        cancel) nothing more is added.
        """
        if not self.streamed or self.stream_ended:
            return []
        start = len(self.events)
        if not self.events:
            self._log(CREATED_EVENT, self.status(now))
        if self.forced_status:
            passed: tuple[str, ...] = (self.forced_status,)
        else:
            step = self._step(now)
            passed = self.script.statuses[self._logged_step + 1 : step + 1]
            self._logged_step = max(self._logged_step, step)
        for status in passed:
            if status == self._logged_status:
                continue  # one event per status entered, not per step
            self._logged_status = status
            if status in STATUS_EVENTS and status in TERMINAL:
                self._log_deltas(status)  # the text came before the end, in_progress seen or not
            if status in STATUS_EVENTS:
                self._log(STATUS_EVENTS[status], status)
            if status == IN_PROGRESS:
                self._log_deltas(None)
            if status in TERMINAL:
                break
        return self.events[start:]

    def _log(self, kind: str, status: str) -> None:
        """Append an event carrying the whole response in `status`, numbered after the last."""
        self.events.append({"type": kind, "response": self._body(status), "sequence_number": len(self.events)})

    def _log_deltas(self, final: str | None) -> None:
        """Append the script's `response.output_text.delta` events, once: consecutive pieces of
        the answer's text, which they concatenate to: the halved text of an incomplete response
        when `final` (None: the script's last status) is incomplete, else the whole text. Nothing
        when the output has no text (a refusal, or only function calls)."""
        if self._logged_deltas or not self.script.text_deltas:
            return
        self._logged_deltas = True
        if final is None:
            final = self.script.statuses[-1]
        items = self._output_items(INCOMPLETE if final == INCOMPLETE else COMPLETED)
        for index, item in enumerate(items):
            if item["type"] == "message" and item["content"][0]["type"] == "output_text":
                text, output_index = item["content"][0]["text"], index
                break
        else:
            return
        count = self.script.text_deltas
        for n in range(count):
            self.events.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": self.message_id,
                    "output_index": output_index,
                    "content_index": 0,
                    "delta": text[n * len(text) // count : (n + 1) * len(text) // count],
                    "sequence_number": len(self.events),
                    "logprobs": [],
                }
            )

    def output_text(self) -> str:
        text = self.script.output_text
        if callable(text):
            return text(self.request)
        if text is None:
            return json.dumps(build_report(_input_text(self.request)))
        return text

    def body(self, now: float) -> dict:
        """The response as the API returns it, in its current status."""
        return self._body(self.status(now))

    def _completed_at(self) -> float:
        if self._completed_wall is None:
            self._completed_wall = time.time()
        return self._completed_wall

    def _body(self, status: str) -> dict:
        """The response as the API returns it in `status`."""
        request = self.request
        script = self.script
        produced = status in (COMPLETED, INCOMPLETE)
        reasoning = request.get("reasoning") or {}
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(request.get("background")),
            "completed_at": self._completed_at() if status == COMPLETED else None,  # only a completed one has it
            "error": dict(script.error) if status == FAILED else None,
            "incomplete_details": {"reason": script.incomplete_reason} if status == INCOMPLETE else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": request.get("max_tool_calls"),
            "model": script.model or model_snapshot(request.get("model", "")),
            "output": self._output_items(status) if produced else [],
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": request.get("text") or {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools", []),
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "metadata": request.get("metadata") or {},
        }
        # Usage only once there is some: the document types it as an object, not nullable.
        if produced and not script.omit_usage:
            body["usage"] = self._usage()
        if produced and script.billable_web_searches is not None:
            body["tool_usage"] = {
                "image_gen": {
                    "input_tokens": 0,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
                    "output_tokens": 0,
                    "total_tokens": 0,
                },
                "web_search": {"num_requests": script.billable_web_searches},
            }
        if script.omit_status:
            del body["status"]
        return body

    def _output_items(self, status: str) -> list[dict]:
        items: list[dict] = []
        if self.script.reasoning_tokens:
            items.append({"type": "reasoning", "id": f"rs_{self.id[5:21]}", "summary": []})
        items += [
            {
                "type": "web_search_call",
                "id": f"ws_{self.id[5:13]}{n}",
                "status": "completed",
                "action": {"type": "search", "query": f"search {n + 1}"},
            }
            for n in range(self.script.web_search_calls)
        ]
        if self.script.web_pages:
            action: dict[str, Any] = {"type": "search", "query": "web search", "queries": ["web search"]}
            if "web_search_call.action.sources" in (self.request.get("include") or []):
                action["sources"] = [{"type": "url", "url": url} for url, _ in self.script.web_pages]
            items.append({"type": "web_search_call", "id": f"ws_{self.id[5:13]}p", "status": "completed", "action": action})
        items += [
            {
                "type": "web_search_call",
                "id": f"ws_{self.id[5:13]}o{n}",
                "status": "completed",
                "action": {"type": "open_page", "url": f"https://example.com/page-{n + 1}"},
            }
            for n in range(self.script.page_opens)
        ]
        # Only functions the request offers, and none under tool_choice "none", as the API makes it.
        offered = {tool.get("name") for tool in self.request.get("tools") or [] if tool.get("type") == "function"}
        calls = () if self.request.get("tool_choice") == "none" else tuple(
            (name, arguments) for name, arguments in self.script.function_calls if name in offered
        )
        items += [
            {
                "type": "function_call",
                "id": f"fc_{self.id[5:13]}{n}",
                "call_id": f"call_{self.id[5:13]}{n}",
                "name": name,
                "arguments": arguments,
                "status": "completed",
            }
            for n, (name, arguments) in enumerate(calls)
        ]
        if calls and self.script.output_text is None:
            return items  # the model stopped to call a function: no message yet
        if self.script.refusal:
            items.append(
                {
                    "type": "message",
                    "id": self.message_id,
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "refusal", "refusal": self.script.refusal}],
                }
            )
            return items
        text = self.output_text()
        if status == INCOMPLETE:
            text = text[: max(1, len(text) // 2)]
        items.append(
            {
                "type": "message",
                "id": self.message_id,
                "status": "completed" if status == COMPLETED else "incomplete",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": text, "annotations": self._annotations(text), "logprobs": []}
                ],
            }
        )
        return items

    def _annotations(self, text: str) -> list[dict]:
        """A `url_citation` per scripted citation, spanning the URL where the text has it."""
        notes = []
        for url, title in self.script.url_citations:
            start = max(text.find(url), 0)
            end = start + len(url) if url in text else len(text)
            notes.append({"type": "url_citation", "url": url, "title": title, "start_index": start, "end_index": end})
        return notes

    def _usage(self) -> dict:
        script = self.script
        input_tokens = script.input_tokens
        if input_tokens is None:
            prompt = _input_text(self.request) + (self.request.get("instructions") or "")
            input_tokens = max(1, len(prompt) // 4) + self.carried_tokens
        output_tokens = script.output_tokens
        if output_tokens is None:
            output_tokens = max(1, len(self.output_text()) // 4) + script.reasoning_tokens
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {
                "cached_tokens": script.cached_tokens,
                "cache_write_tokens": script.cache_write_tokens,
            },
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        }


@dataclass(frozen=True)
class _StreamPlan:
    """What a stream writes: the events of `response_id` after sequence number `after`, then live
    ones; with `cut_after`, that many events and then a broken connection (`Fault.cut`); with
    `error`, only that fault's `error` event, numbered after `after` (`Fault.error_event`; no
    response at all for a create)."""

    response_id: str | None
    after: int = -1
    cut_after: int | None = None
    error: Fault | None = None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: _StreamPlan | None = None  # answer with Server-Sent Events instead of `body`


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> _Reply:
    return _Reply(status, {"error": {"message": message, "type": type, "param": param, "code": code}})


_ROUTE = re.compile(r"^/v1/responses(?:/(?P<id>[^/]+)(?P<cancel>/cancel)?)?/?$")


def _endpoint(method: str, path: str) -> tuple[str, str | None]:
    match = _ROUTE.match(urlsplit(path).path)
    if not match:
        return UNKNOWN, None
    response_id, cancel = match["id"], match["cancel"]
    if method == "POST" and response_id is None:
        return CREATE, None
    if method == "POST" and cancel:
        return CANCEL, response_id
    if method == "GET" and response_id and not cancel:
        return RETRIEVE, response_id
    if method == "DELETE" and response_id and not cancel:
        return DELETE, response_id
    return UNKNOWN, response_id


# --- The fake -------------------------------------------------------------------------------------


class ResponsesAPIFake:
    """The Responses API on 127.0.0.1, a random port, in a daemon thread.

    Use as a context manager (or `start()` / `stop()`). `base_url` ends in `/v1` like the SDK's
    default. `clock` drives `advance="time"` scripts (inject one to step time by hand).
    """

    def __init__(self, *, latency: float = 0.0, clock: Callable[[], float] = time.monotonic):
        self.latency = latency
        self.default_script = Script()
        self.clock = clock
        self._lock = threading.RLock()
        self._scripts: deque[Script] = deque()
        self._faults: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self._requests: list[RecordedRequest] = []
        self._responses: dict[str, FakeResponse] = {}
        self.validation_errors: list[str] = []
        self.internal_errors: list[str] = []
        # previous_response_ids refused as not found (a fact of the world, not a bad request).
        self.chain_rejections: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # tells open streams to end
        self._open_streams = 0

    # Lifecycle

    def start(self) -> ResponsesAPIFake:
        _openapi()  # load the document before the first request, not inside it
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="responses-api-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # streams end at their next look, and their sockets are shut below
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ResponsesAPIFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    # Scripting

    def script_next(self, *scripts: Script) -> None:
        """Queue scripts for the next created responses, in order."""
        with self._lock:
            self._scripts.extend(scripts)

    def inject(self, endpoint: str, fault: Fault, *, times: int = 1) -> None:
        """Fail the next `times` requests to `endpoint` (CREATE, RETRIEVE, CANCEL or DELETE)."""
        if endpoint not in self._faults:
            raise ValueError(f"Unknown endpoint {endpoint!r}; use one of {ENDPOINTS}")
        with self._lock:
            self._faults[endpoint].extend([fault] * times)

    def set_status(self, response_id: str, status: str) -> None:
        """Force a response into `status` (e.g. complete it without walking the script)."""
        if status not in ACTIVE | TERMINAL:
            raise ValueError(f"Unknown status {status!r}")
        with self._lock:
            response = self._responses[response_id]
            now = self.clock()
            self._observe(response, now)  # the script's steps up to now come before the forced one
            response.forced_status = status
            self._observe(response, now)

    # Recording

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def count(self, endpoint: str) -> int:
        return len(self.requests_to(endpoint))

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.endpoint for r in self.requests)

    @property
    def responses(self) -> dict[str, FakeResponse]:
        """Created responses by id, in creation order (deleted ones included, flagged)."""
        with self._lock:
            return dict(self._responses)

    def body_of(self, response_id: str) -> dict:
        """The response's body as a retrieve would return it now, without counting as a retrieve."""
        with self._lock:
            return self._responses[response_id].body(self.clock())

    def events_of(self, response_id: str) -> list[dict]:
        """A copy of the response's stream event log as of now (empty unless created with
        `stream: true`), without counting as a retrieve."""
        with self._lock:
            response = self._responses[response_id]
            self._observe(response, self.clock())
            return copy.deepcopy(response.events)

    @property
    def open_streams(self) -> int:
        """Streams being written now (from creates and retrieves): wait on it to know that a
        client is listening, or that it hung up."""
        with self._lock:
            return self._open_streams

    # Serving (called from handler threads)

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply | None:
        """Record, wait, apply a fault or process. None means: drop the connection."""
        endpoint, response_id = _endpoint(method, path)
        body = _parse(raw)
        query = parse_qs(urlsplit(path).query)
        problem = _problem(body) if endpoint == CREATE else None
        with self._lock:
            self._requests.append(RecordedRequest(method, path, endpoint, headers, body, response_id, time.time()))
            fault = self._faults[endpoint].popleft() if self._faults.get(endpoint) else None
            if problem:
                self.validation_errors.append(problem.message)
        if self.latency:
            time.sleep(self.latency)
        if fault and fault.kind == _HTTP:
            return _Reply(fault.status, {"error": dict(fault.error)}, fault.headers)
        if fault and fault.kind == _DROP and not fault.processed:
            return None
        if problem:
            reply = _error(400, problem.message, code=problem.code, param=problem.param)
        elif fault and fault.kind == _ERROR_EVENT and endpoint == CREATE and body.get("stream") is True:
            with self._lock:
                refused = self._chain_problem(body)  # refused as usual, before any stream
            reply = refused or _Reply(200, None, stream=_StreamPlan(None, error=fault))
        else:
            reply = self._process(endpoint, response_id, body, query)
        if fault and fault.kind == _ERROR_EVENT and endpoint == RETRIEVE and reply.stream is not None:
            reply = replace(reply, stream=replace(reply.stream, error=fault))
        if fault and fault.kind == _DROP:
            return None
        if fault and fault.kind == _DELAY:
            time.sleep(fault.seconds)
        if fault and fault.kind == _CUT and reply.stream is not None:
            reply = replace(reply, stream=replace(reply.stream, cut_after=fault.events))
        return reply

    def _process(
        self, endpoint: str, response_id: str | None, body: Any, query: Mapping[str, list[str]]
    ) -> _Reply:
        with self._lock:
            now = self.clock()
            if endpoint == CREATE:
                return self._create(body, now)
            if endpoint == UNKNOWN:
                return _error(404, "Invalid URL.", code="unknown_url")
            response = self._responses.get(response_id or "")
            if response is None or response.deleted:
                return _error(404, f"Response with id '{response_id}' not found.")
            if endpoint == RETRIEVE:
                if _query_flag(query, "stream"):
                    return self._stream_from(response, query)
                response.retrieves += 1
                self._observe(response, now)
                return _Reply(200, response.body(now))
            if endpoint == CANCEL:
                self._observe(response, now)  # the script's steps up to now come before the cancel
                reply = self._cancel(response, now)
                self._observe(response, now)
                return reply
            response.deleted = True
            return _Reply(200, {"id": response.id, "object": "response.deleted", "deleted": True})

    def _observe(self, response: FakeResponse, now: float) -> None:
        """Log the response's new stream events (the lock held) and check each against the
        document: a problem is recorded, not raised, as this runs in server threads."""
        for event in response.observe(now):
            self.validation_errors.extend(validate_stream_event(event))

    def _stream_from(self, response: FakeResponse, query: Mapping[str, list[str]]) -> _Reply:
        """A retrieve with `stream=true`: the logged events after `starting_after` (all without
        it), then live ones. It is not a poll, so it leaves `retrieves` (and the steps of a
        retrieve script) alone."""
        if not response.streamed:
            return _error(
                400, "Response was not created with stream=true, so it cannot be streamed.", param="stream"
            )
        raw = (query.get("starting_after") or ["-1"])[-1]
        try:
            after = int(raw)
        except ValueError:
            return _error(
                400, f"Invalid 'starting_after': expected an integer, but got '{raw}' instead.",
                code="invalid_type", param="starting_after",
            )
        return _Reply(200, None, stream=_StreamPlan(response.id, after))

    def _follow(
        self, plan: _StreamPlan, write: Callable[[dict], None], hung_up: Callable[[float], bool]
    ) -> bool:
        """Write one stream (from a handler thread): the logged events after `plan.after`, then
        each new one as the response enters a status, looking every STREAM_POLL_SECONDS.

        True when it ended as the API ends a stream (the log is final: a terminal event was
        written, or the response was cancelled; or the response was deleted; or the plan's one
        `error` event was written), so the caller ends the body properly; False when it broke
        off: a cut, the client hung up, or the fake is stopping. A failed `write` raises OSError
        to the caller.
        """
        with self._lock:
            self._open_streams += 1
        try:
            if plan.error is not None:
                event = plan.error._stream_event(plan.after + 1)
                if not plan.error.nested:  # the nested shape is knowingly off the document
                    with self._lock:
                        self.validation_errors.extend(validate_stream_event(event))
                write(event)
                return True
            cursor, written = plan.after, 0
            if plan.cut_after == 0:
                return False
            while not self._stopping.is_set():
                with self._lock:
                    response = self._responses[plan.response_id]
                    self._observe(response, self.clock())
                    pending = response.events[max(cursor + 1, 0):]
                    over = response.stream_ended or response.deleted
                for event in pending:
                    write(event)
                    written += 1
                    cursor = event["sequence_number"]
                    if written == plan.cut_after:
                        return False
                if over:
                    return True
                if hung_up(STREAM_POLL_SECONDS):
                    return False
            return False
        finally:
            with self._lock:
                self._open_streams -= 1

    def _chain_problem(self, body: dict) -> _Reply | None:
        """What the API refuses because of stored state: a `previous_response_id` it does not
        have (never created, deleted, or `forget`-ten as past retention), and function call
        outputs whose `call_id` the previous response never made."""
        previous_id = body.get("previous_response_id")
        previous = self._responses.get(previous_id) if previous_id else None
        if previous_id and (previous is None or previous.deleted or not previous.request.get("store", True)):
            self.chain_rejections.append(previous_id)
            return _error(
                400, f"Previous response with id '{previous_id}' not found.",
                code="previous_response_not_found", param="previous_response_id",
            )
        made = set()
        if previous is not None:
            made = {item["call_id"] for item in previous._output_items(COMPLETED) if item["type"] == "function_call"}
        items = body.get("input") if isinstance(body.get("input"), list) else []
        made |= {item.get("call_id") for item in items if isinstance(item, dict) and item.get("type") == "function_call"}
        for item in items:
            if isinstance(item, dict) and item.get("type") == "function_call_output" and item.get("call_id") not in made:
                message = f"No tool call found for function call output with call_id {item.get('call_id')}."
                self.validation_errors.append(message)
                return _error(400, message, param="input")
        return None

    def forget(self, response_id: str) -> None:
        """Drop a stored response as retention would: reads and chains to it now 404 / 400."""
        with self._lock:
            self._responses[response_id].deleted = True

    def _create(self, body: dict, now: float) -> _Reply:
        problem = self._chain_problem(body)
        if problem is not None:
            return problem
        script = self._scripts.popleft() if self._scripts else self.default_script
        previous = self._responses.get(body.get("previous_response_id") or "")
        carried = 0
        if previous is not None:
            usage = previous._usage()
            carried = usage["input_tokens"] + usage["output_tokens"]
        response = FakeResponse(
            id=f"resp_{secrets.token_hex(24)}",
            request=body,
            script=script,
            created_at=int(time.time()),
            started=now,
            carried_tokens=carried,
        )
        self._responses[response.id] = response
        self._observe(response, now)  # response.created (and the first status) open the log
        if response.streamed:
            return _Reply(200, None, stream=_StreamPlan(response.id))
        return _Reply(200, response.body(now))

    def _cancel(self, response: FakeResponse, now: float) -> _Reply:
        if not response.request.get("background"):
            return _error(400, "Only responses created with background=true can be cancelled.")
        status = response.status(now)
        if status == CANCELLED:
            return _Reply(200, response.body(now))  # cancelling twice returns the final object
        if status in TERMINAL:
            return _error(400, f"Cannot cancel a {status} response.")
        result = response.script.cancel_result
        if result == CANCEL_LOSES_RACE:
            response.forced_status = COMPLETED
            return _Reply(200, response.body(now))
        response.forced_status = CANCELLED
        reply = _Reply(200, response.body(now))
        if result == CANCEL_REVERTED:
            response.forced_status = COMPLETED
        return reply


def _query_flag(query: Mapping[str, list[str]], name: str) -> bool:
    """A boolean query parameter as the SDK sends one (`stream=true`)."""
    return (query.get(name) or [""])[-1].lower() == "true"


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the benchmark opens hundreds of connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, fake: ResponsesAPIFake):
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads still waiting on kept-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, dropped connections) are expected, not errors."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = fake._handle(self.command, self.path, headers, raw)
        except Exception:
            with fake._lock:
                fake.internal_errors.append(traceback.format_exc())
            reply = _error(500, "The fake failed; see fake.internal_errors.", type="server_error")
        if reply is None:
            self.close_connection = True
            return
        if reply.stream is not None:
            self._send_stream(reply.stream)
            return
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (timeout) or went away

    def _send_stream(self, plan: _StreamPlan) -> None:
        """Answer with Server-Sent Events, then close the connection.

        The body is chunked (as the API sends a stream over HTTP/1.1) rather than delimited by
        the close: a stream that breaks off then lacks its last chunk, and the client can tell a
        broken stream from one that ended.
        """
        fake = self.server.fake
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("connection", "close")
            self.send_header("x-request-id", f"req_{secrets.token_hex(16)}")
            self.end_headers()
            if fake._follow(plan, self._write_event, self._hung_up):
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away: the stream just stops
        except Exception:
            with fake._lock:
                fake.internal_errors.append(traceback.format_exc())

    def _write_event(self, event: dict) -> None:
        data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _hung_up(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client to hang up. A streaming client sends nothing more,
        so the socket turning readable means it closed (or `stop()` shut it down)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                return True
        except (OSError, ValueError):
            return True
        if readable:
            time.sleep(timeout)  # stray bytes, not a hang-up: wait as if it had stayed quiet
        return False


__all__ = [
    "CANCEL",
    "CANCEL_HONOURED",
    "CANCEL_LOSES_RACE",
    "CANCEL_REVERTED",
    "CREATE",
    "CREATED_EVENT",
    "DELETE",
    "Fault",
    "FakeResponse",
    "RETRIEVE",
    "STATUS_EVENTS",
    "RecordedRequest",
    "ResponsesAPIFake",
    "Script",
    "build_report",
    "make_webhook_secret",
    "sign_webhook",
    "validate_create_request",
    "validate_response_body",
    "validate_stream_event",
    "webhook_delivery",
]
