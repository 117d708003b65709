"""OpenAIProvider through the real SDK against the loopback fake of the Responses API.

No database and no mocks: every call is real HTTP to tests/fakes/responses_api.py, which also
validates every create body against the OpenAPI document.
"""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest
from django.utils import timezone

from jobs.providers.base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INCOMPLETE,
    IN_PROGRESS,
    QUEUED,
    ProviderError,
    ReportRequest,
    SourceDoc,
)
from jobs.providers.openai_provider import METADATA_MAX_PAIRS, OpenAIProvider
from jobs.providers.openai_webhooks import WebhookError, WebhookEvent, parse_webhook
from jobs.report_schema import REPORT_SCHEMA, REPORT_SCHEMA_NAME
from tests.fakes.responses_api import (
    CANCEL,
    CANCEL_LOSES_RACE,
    CANCEL_REVERTED,
    CREATE,
    RETRIEVE,
    Fault,
    ResponsesAPIFake,
    Script,
    make_webhook_secret,
    sign_webhook,
    validate_response_body,
    webhook_delivery,
)

API_KEY = "sk-test-provider"


@pytest.fixture
def fake():
    with ResponsesAPIFake() as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.internal_errors == []


@pytest.fixture
def provider(fake):
    return OpenAIProvider(api_key=API_KEY, base_url=fake.base_url, timeout=5.0)


# A function tool the scripted function calls can call (the API only calls offered functions).
LOOKUP_TOOL = {
    "type": "function", "name": "lookup", "strict": True,
    "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
}


def make_request(**overrides) -> ReportRequest:
    values = dict(
        job_id="job_7f3a",
        attempt=2,
        step="report",
        model="gpt-5",
        instructions="Write a research report.",
        input_text=(
            "Topic: Heat pumps in cold climates\n\nSources (1):\n\n"
            "=== S1: Field study ===\nHeat pumps kept homes warm at minus 20 degrees in the trial."
        ),
        topic="Heat pumps in cold climates",
        audience="Policy makers",
        sources=(SourceDoc(sid="S1", title="Field study", text="Heat pumps kept homes warm."),),
        output_schema=REPORT_SCHEMA,
    )
    values.update(overrides)
    return ReportRequest(**values)


def sent_body(fake) -> dict:
    (create,) = fake.requests_to(CREATE)
    return create.body


# --- create -------------------------------------------------------------------------------------


def test_create_starts_a_stored_background_response_tagged_with_the_job(fake, provider):
    state = provider.create(make_request(metadata={"workspace": "acme"}))

    body = sent_body(fake)
    assert body["background"] is True
    assert body["store"] is True
    assert body["metadata"] == {"job_id": "job_7f3a", "attempt": "2", "step": "report", "workspace": "acme"}
    assert body["model"] == "gpt-5"
    assert body["instructions"] == "Write a research report."
    assert body["input"].startswith("Topic: Heat pumps")
    assert fake.requests_to(CREATE)[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert state.id in fake.responses
    assert state.status == QUEUED
    assert not state.is_terminal


def test_create_asks_for_strict_structured_output(fake, provider):
    provider.create(make_request())

    assert sent_body(fake)["text"] == {
        "format": {"type": "json_schema", "name": REPORT_SCHEMA_NAME, "schema": REPORT_SCHEMA, "strict": True}
    }


def test_create_sends_only_the_optional_fields_that_are_set(fake, provider):
    provider.create(make_request())

    body = sent_body(fake)
    for key in ("previous_response_id", "reasoning", "tools", "max_output_tokens"):
        assert key not in body


def test_create_sends_chaining_reasoning_tools_and_token_cap_when_set(fake, provider):
    tools = ({"type": "web_search", "filters": {"allowed_domains": ["example.org"]}},)
    earlier = provider.create(make_request())

    provider.create(
        make_request(previous_response_id=earlier.id, reasoning_effort="high", tools=tools, max_output_tokens=4000)
    )

    body = fake.requests_to(CREATE)[-1].body
    assert body["previous_response_id"] == earlier.id
    assert body["reasoning"] == {"effort": "high"}
    assert body["tools"] == list(tools)
    assert body["max_output_tokens"] == 4000


def test_create_keeps_metadata_within_the_api_limits(fake, provider):
    extra = {f"key{n}": "v" * 600 for n in range(20)} | {"k" * 65: "too long a key", "job_id": "spoofed"}

    provider.create(make_request(metadata=extra))

    metadata = sent_body(fake)["metadata"]
    assert len(metadata) == METADATA_MAX_PAIRS
    assert metadata["job_id"] == "job_7f3a"
    assert all(len(key) <= 64 and len(value) <= 512 for key, value in metadata.items())


def test_a_server_error_on_create_is_sent_once_and_transient(fake, provider):
    fake.inject(CREATE, Fault.server_error(), times=3)

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert fake.count(CREATE) == 1  # the SDK did not retry the POST
    assert raised.value.transient
    assert raised.value.status_code == 500
    assert raised.value.failure_class == "provider_error"


@pytest.mark.parametrize("processed", [False, True])
def test_a_dropped_connection_on_create_is_sent_once_and_transient(fake, provider, processed):
    fake.inject(CREATE, Fault.drop(processed=processed), times=3)

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert fake.count(CREATE) == 1
    assert raised.value.transient
    assert raised.value.code == "connection_error"
    assert len(fake.responses) == int(processed)  # the answer may be lost after the response started


def test_a_create_timeout_is_transient_although_the_response_may_exist(fake):
    provider = OpenAIProvider(api_key=API_KEY, base_url=fake.base_url, timeout=0.5)
    fake.inject(CREATE, Fault.delay(2.0))

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert raised.value.transient
    assert raised.value.code == "timeout"
    assert fake.count(CREATE) == 1
    assert len(fake.responses) == 1  # why the worker reconciles by job id instead of retrying blindly


def test_a_rate_limit_is_transient_with_the_servers_retry_after(fake, provider):
    fake.inject(CREATE, Fault.rate_limit(retry_after=7))

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert raised.value.transient
    assert raised.value.retry_after == 7
    assert raised.value.status_code == 429
    assert raised.value.code == "rate_limit_exceeded"
    assert fake.count(CREATE) == 1


def test_insufficient_quota_is_not_transient(fake, provider):
    fake.inject(CREATE, Fault.insufficient_quota())

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert not raised.value.transient
    assert raised.value.code == "insufficient_quota"
    assert "quota" in raised.value.message


def test_a_rejected_api_key_is_not_transient(fake, provider):
    fake.inject(CREATE, Fault.unauthorized())

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert not raised.value.transient
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_a_bad_request_is_a_validation_error(fake, provider):
    fake.inject(CREATE, Fault.bad_request("Unsupported model.", code="model_not_found", param="model"))

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert not raised.value.transient
    assert raised.value.failure_class == "validation_error"
    assert raised.value.message == "Unsupported model."


def test_a_policy_refusal_is_a_policy_block(fake, provider):
    fake.inject(CREATE, Fault.bad_request("Request flagged.", code="content_policy_violation"))

    with pytest.raises(ProviderError) as raised:
        provider.create(make_request())

    assert not raised.value.transient
    assert raised.value.failure_class == "policy_block"
    assert raised.value.code == "content_policy_violation"


# --- retrieve -----------------------------------------------------------------------------------


def test_retrieve_follows_the_response_to_completion_with_usage(fake, provider):
    fake.script_next(
        Script(input_tokens=1200, cached_tokens=200, output_tokens=900, reasoning_tokens=300, web_search_calls=2)
    )
    created = provider.create(make_request())

    seen = [created.status] + [provider.retrieve(created.id).status for _ in range(3)]
    final = provider.retrieve(created.id)

    assert seen == [QUEUED, IN_PROGRESS, COMPLETED, COMPLETED]
    assert final.is_terminal
    report = json.loads(final.output_text)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert report["evidence"][0]["source_id"] == "S1"
    assert report["evidence"][0]["quote"] in make_request().input_text
    assert final.usage.input_tokens == 1200
    assert final.usage.cached_tokens == 200
    assert final.usage.output_tokens == 900
    assert final.usage.reasoning_tokens == 300
    assert final.usage.tool_calls == 2
    assert final.model == "gpt-5-2025-08-07"  # the dated snapshot that answered
    assert final.raw["id"] == created.id
    assert final.raw["metadata"]["job_id"] == "job_7f3a"
    # the provider's own time of completion, the same on every read (a draft's lag runs from it)
    assert final.completed_at is not None and final.completed_at.tzinfo is not None
    assert abs((timezone.now() - final.completed_at).total_seconds()) < 60
    assert final.raw["completed_at"] == pytest.approx(final.completed_at.timestamp(), abs=1e-3)


def test_a_running_response_reports_no_output_or_usage_yet(fake, provider):
    created = provider.create(make_request())

    state = provider.retrieve(created.id)

    assert state.status == IN_PROGRESS
    assert state.output_text == ""
    assert state.usage.input_tokens == 0


def test_time_based_statuses_follow_the_fakes_clock():
    now = [100.0]
    with ResponsesAPIFake(clock=lambda: now[0]) as fake:
        fake.default_script = Script(advance="time", step_seconds=10)
        provider = OpenAIProvider(api_key=API_KEY, base_url=fake.base_url)
        created = provider.create(make_request())

        statuses = [provider.retrieve(created.id).status]
        now[0] += 10
        statuses.append(provider.retrieve(created.id).status)
        now[0] += 25
        statuses.append(provider.retrieve(created.id).status)

        assert statuses == [QUEUED, IN_PROGRESS, COMPLETED]
        assert fake.validation_errors == []


def test_tool_calls_count_the_tool_call_items_in_the_output(fake, provider):
    fake.script_next(Script(web_search_calls=3, function_calls=(("lookup", "{}"),), output_text="{}"))
    created = provider.create(make_request(tools=(LOOKUP_TOOL,)))
    fake.set_status(created.id, COMPLETED)

    assert provider.retrieve(created.id).usage.tool_calls == 4


def test_billable_web_searches_from_tool_usage_replace_the_item_count(fake, provider):
    fake.script_next(Script(web_search_calls=3, billable_web_searches=2, function_calls=(("lookup", "{}"),)))
    created = provider.create(make_request(tools=(LOOKUP_TOOL,)))
    fake.set_status(created.id, COMPLETED)

    state = provider.retrieve(created.id)

    assert state.usage.tool_calls == 4  # every tool call item
    assert state.usage.web_searches == 2  # but only the billable searches are priced
    assert state.raw["tool_usage"]["web_search"]["num_requests"] == 2


def test_a_failed_response_is_a_state_with_its_error_not_an_exception(fake, provider):
    fake.script_next(Script.failed(code="server_error", message="The model crashed."))
    created = provider.create(make_request())

    provider.retrieve(created.id)
    state = provider.retrieve(created.id)

    assert state.status == FAILED
    assert state.error_code == "server_error"
    assert state.error_message == "The model crashed."
    assert state.output_text == ""
    assert state.completed_at is None  # only a completed response has one


def test_unknown_error_codes_are_kept_as_they_come(fake, provider):
    fake.script_next(Script.failed(code="brand_new_failure_2027"))
    created = provider.create(make_request())
    fake.set_status(created.id, FAILED)

    assert provider.retrieve(created.id).error_code == "brand_new_failure_2027"


def test_an_incomplete_response_reports_its_reason_and_partial_output(fake, provider):
    fake.script_next(Script.incomplete(reason="max_output_tokens"))
    created = provider.create(make_request())
    fake.set_status(created.id, INCOMPLETE)

    state = provider.retrieve(created.id)

    assert state.status == INCOMPLETE
    assert state.incomplete_reason == "max_output_tokens"
    assert state.output_text  # truncated JSON, kept for diagnosis
    assert state.usage.output_tokens > 0


def test_missing_status_and_usage_are_tolerated(fake, provider):
    fake.script_next(Script(omit_status=True, omit_usage=True), Script.running(omit_status=True))
    finished = provider.create(make_request())
    running = provider.create(make_request())
    fake.set_status(finished.id, COMPLETED)

    state = provider.retrieve(finished.id)

    assert state.status == COMPLETED  # read from completed_at
    assert state.output_text
    assert state.usage.input_tokens == 0
    assert provider.retrieve(running.id).status == IN_PROGRESS  # keep polling


def test_retrieve_does_not_retry_inside_the_sdk(fake, provider):
    # The worker owns retries (with backoff on the job); a poll never blocks on SDK retries.
    created = provider.create(make_request())
    fake.inject(RETRIEVE, Fault.server_error(headers={"retry-after-ms": "10"}))

    with pytest.raises(ProviderError) as raised:
        provider.retrieve(created.id)

    assert raised.value.transient
    assert fake.count(RETRIEVE) == 1
    assert provider.retrieve(created.id).id == created.id


def test_retrieving_an_unknown_response_is_not_transient(provider):
    with pytest.raises(ProviderError) as raised:
        provider.retrieve("resp_does_not_exist")

    assert not raised.value.transient
    assert raised.value.status_code == 404


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_of_a_running_response_ends_it_cancelled(fake, provider):
    fake.script_next(Script.running())
    created = provider.create(make_request())
    provider.retrieve(created.id)

    state = provider.cancel(created.id)

    assert state.status == CANCELLED
    assert state.is_terminal
    assert provider.retrieve(created.id).status == CANCELLED


def test_cancelling_twice_returns_the_final_object(fake, provider):
    fake.script_next(Script.running())
    created = provider.create(make_request())
    provider.cancel(created.id)

    assert provider.cancel(created.id).status == CANCELLED


def test_cancel_after_completion_returns_the_completed_state(fake, provider):
    created = provider.create(make_request())
    fake.set_status(created.id, COMPLETED)

    state = provider.cancel(created.id)

    assert state.status == COMPLETED
    assert json.loads(state.output_text)["title"]
    assert fake.count(CANCEL) == 1  # answered 400 "Cannot cancel a completed response."


def test_cancel_losing_the_race_returns_the_completed_response(fake, provider):
    fake.script_next(Script.running(cancel_result=CANCEL_LOSES_RACE))
    created = provider.create(make_request())

    state = provider.cancel(created.id)

    assert state.status == COMPLETED
    assert state.output_text


def test_a_cancelled_response_can_read_completed_later(fake, provider):
    fake.script_next(Script.running(cancel_result=CANCEL_REVERTED))
    created = provider.create(make_request())

    assert provider.cancel(created.id).status == CANCELLED
    assert provider.retrieve(created.id).status == COMPLETED


def test_cancel_of_an_unknown_response_is_an_error(provider):
    with pytest.raises(ProviderError) as raised:
        provider.cancel("resp_does_not_exist")

    assert raised.value.status_code == 404


# --- the fake itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": "gpt-5", "input": "hi", "backgroud": True}, "Unknown parameter: 'backgroud'"),
        ({"model": "gpt-5", "input": "hi", "background": "yes"}, "background"),
        ({"model": "gpt-5", "input": "hi", "tools": [{"type": "web_searcher"}]}, "tools"),
        ({"model": "gpt-5", "input": "hi", "metadata": {str(n): "v" for n in range(17)}}, "metadata"),
        ({"model": "gpt-5", "input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}, "name"),
        # Keys in the wrong place: the domains belong in `filters`.
        ({"model": "gpt-5", "input": "hi", "tools": [{"type": "web_search", "allowed_domains": ["a.org"]}]},
         "Unknown parameter: 'tools[0].allowed_domains'"),
        ({"model": "gpt-5", "input": "hi", "reasoning": {"effort": "high", "budget": 3}}, "reasoning.budget"),
        # Strict structured output refuses an open object or an optional property.
        ({"model": "gpt-5", "input": "hi", "text": {"format": {"type": "json_schema", "name": "r", "strict": True,
          "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}},
         "'additionalProperties' is required"),
        ({"model": "gpt-5", "input": "hi", "text": {"format": {"type": "json_schema", "name": "r", "strict": True,
          "schema": {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}, "required": []}}}},
         "'required' is required to include every key"),
        # Reasoning settings on a model without reasoning, or an effort the model does not offer.
        ({"model": "gpt-4.1", "input": "hi", "reasoning": {"effort": "low"}}, "not supported with this model"),
        ({"model": "gpt-5", "input": "hi", "reasoning": {"effort": "none"}}, "does not support 'none'"),
        ({"model": "gpt-5.1", "input": "hi", "reasoning": {"effort": "minimal"}}, "does not support 'minimal'"),
    ],
)
def test_the_fake_rejects_requests_the_api_would_reject(body, expected):
    with ResponsesAPIFake() as fake:
        reply = httpx.post(f"{fake.base_url}/responses", json=body)

        assert reply.status_code == 400
        assert expected in reply.json()["error"]["message"]
        assert reply.json()["error"]["type"] == "invalid_request_error"
        assert len(fake.validation_errors) == 1
        assert fake.responses == {}


def test_the_fake_accepts_message_list_input_and_function_outputs(fake):
    fake.script_next(Script(statuses=("completed",), function_calls=(("lookup", "{}"),)))
    first = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": "hi", "tools": [LOOKUP_TOOL]}).json()
    [call] = [item for item in first["output"] if item["type"] == "function_call"]
    for body in (
        {"model": "gpt-5", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
        {"model": "gpt-5", "previous_response_id": first["id"],
         "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "{}"}]},
    ):
        assert httpx.post(f"{fake.base_url}/responses", json=body).status_code == 200


def test_the_fake_refuses_a_chain_to_a_response_it_does_not_have():
    with ResponsesAPIFake() as fake:
        kept = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": "hi"}).json()
        fake.forget(kept["id"])
        for previous in ("resp_never", kept["id"]):
            reply = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": "hi", "previous_response_id": previous})
            assert reply.status_code == 400
            assert reply.json()["error"]["code"] == "previous_response_not_found"
        assert fake.chain_rejections == ["resp_never", kept["id"]]


def test_the_fake_refuses_a_function_output_for_a_call_never_made():
    with ResponsesAPIFake() as fake:
        fake.script_next(Script(statuses=("completed",), function_calls=(("lookup", "{}"),)))
        first = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": "hi", "tools": [LOOKUP_TOOL]}).json()

        reply = httpx.post(f"{fake.base_url}/responses", json={
            "model": "gpt-5", "previous_response_id": first["id"],
            "input": [{"type": "function_call_output", "call_id": "call_wrong", "output": "{}"}]})

        assert reply.status_code == 400 and "call_wrong" in reply.json()["error"]["message"]


def test_the_fake_returns_reasoning_items_and_refusals_that_match_the_document(fake):
    fake.script_next(Script(statuses=("completed",), reasoning_tokens=50, refusal="I can't help with that."))
    body = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": "hi"}).json()

    assert [item["type"] for item in body["output"]] == ["reasoning", "message"]
    assert body["output"][1]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]
    assert validate_response_body(body) == []


def test_the_fake_forgets_deleted_responses(fake):
    client = openai.OpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    created = client.responses.create(model="gpt-5", input="hi", background=True, store=True)

    client.responses.delete(created.id)

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    assert fake.responses[created.id].deleted


@pytest.mark.parametrize("script", [Script(), Script.failed(), Script.incomplete(), Script.running()])
def test_the_fakes_bodies_match_the_response_schema(fake, provider, script):
    fake.script_next(script)
    created = provider.create(make_request(tools=({"type": "web_search"},)))

    bodies = [fake.body_of(created.id)]
    for _ in range(2):
        provider.retrieve(created.id)
        bodies.append(fake.body_of(created.id))

    assert [validate_response_body(body) for body in bodies] == [[], [], []]


# --- webhooks -----------------------------------------------------------------------------------


def test_a_signed_webhook_is_parsed():
    secret = make_webhook_secret()
    payload, headers = webhook_delivery("resp_abc", "response.completed", secret=secret)

    event = parse_webhook(payload=payload, headers=headers, secret=secret)

    assert event == WebhookEvent(id=json.loads(payload)["id"], type="response.completed", response_id="resp_abc")


def test_webhook_headers_are_matched_case_insensitively():
    secret = make_webhook_secret()
    payload, headers = webhook_delivery("resp_abc", "response.failed", secret=secret)
    headers = {name.title(): value for name, value in headers.items()}

    assert parse_webhook(payload=payload, headers=headers, secret=secret).response_id == "resp_abc"


def test_events_about_other_objects_carry_no_response_id():
    secret = make_webhook_secret()
    payload, headers = webhook_delivery("batch_123", "batch.completed", secret=secret)

    assert parse_webhook(payload=payload, headers=headers, secret=secret).response_id == ""


def _tampered(payload, headers, secret):
    return payload.replace(b"resp_abc", b"resp_xyz"), headers, secret


def _wrong_secret(payload, headers, secret):
    return payload, headers, make_webhook_secret()


def _stale(payload, headers, secret):
    timestamp = int(time.time()) - 301
    return payload, sign_webhook(payload=payload, secret=secret, msg_id="wh_1", timestamp=timestamp), secret


def _from_the_future(payload, headers, secret):
    timestamp = int(time.time()) + 400
    return payload, sign_webhook(payload=payload, secret=secret, msg_id="wh_1", timestamp=timestamp), secret


def _unsigned(payload, headers, secret):
    return payload, {"content-type": "application/json"}, secret


def _no_timestamp(payload, headers, secret):
    return payload, {k: v for k, v in headers.items() if k != "webhook-timestamp"}, secret


def _no_secret_configured(payload, headers, secret):
    return payload, headers, ""


def _signed_garbage(payload, headers, secret):
    garbage = b"not json"
    return garbage, sign_webhook(payload=garbage, secret=secret, msg_id="wh_1", timestamp=int(time.time())), secret


@pytest.mark.parametrize(
    "spoil",
    [_tampered, _wrong_secret, _stale, _from_the_future, _unsigned, _no_timestamp, _no_secret_configured,
     _signed_garbage],
)
def test_an_untrustworthy_webhook_is_rejected(spoil):
    secret = make_webhook_secret()
    payload, headers = webhook_delivery("resp_abc", "response.completed", secret=secret)

    payload, headers, secret = spoil(payload, headers, secret)

    with pytest.raises(WebhookError):
        parse_webhook(payload=payload, headers=headers, secret=secret)
