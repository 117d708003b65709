"""Streaming (Server-Sent Events) in the loopback fake of the Responses API, through the real SDK.

A background response created with `stream=True` can be followed, and resumed after a broken
connection with `retrieve(id, stream=True, starting_after=N)`; these tests hold the fake to
what the API documents for that, so product code built on it meets the same behaviour.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from tests import aio
from tests.fakes.responses_api import (
    CREATE,
    RETRIEVE,
    Fault,
    ResponsesAPIFake,
    Script,
    validate_stream_event,
)

INPUT = "Topic: Heat pumps\n\n=== S1: Field study ===\nHeat pumps kept homes warm at minus 20 degrees."

CREATED, QUEUED, IN_PROGRESS = "response.created", "response.queued", "response.in_progress"
COMPLETED, FAILED, INCOMPLETE = "response.completed", "response.failed", "response.incomplete"


@pytest.fixture
def fake(openai_fake):
    return openai_fake


@pytest.fixture
def client(fake):
    with openai.OpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0, timeout=5.0) as client:
        yield client


def create_streamed(client, fake, script=None):
    """A background response created with stream=True: the SDK's stream of its events."""
    if script is not None:
        fake.script_next(script)
    return client.responses.create(model="gpt-5", input=INPUT, background=True, stream=True)


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def started(client, fake, script):
    """Create a streamed response, read its first two events and hang up: its id."""
    stream = create_streamed(client, fake, script)
    events = [next(stream), next(stream)]
    stream.close()
    assert [e.type for e in events] == [CREATED, QUEUED]
    wait_for(lambda: fake.open_streams == 0)
    return events[0].response.id


class Listener:
    """Iterate an SDK stream in a thread, keeping its events and how it ended."""

    def __init__(self, open_stream):
        self.events = []
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(open_stream,), daemon=True)
        self._thread.start()

    def _run(self, open_stream):
        try:
            for event in open_stream():
                self.events.append(event)
        except Exception as exc:  # kept for the test to look at
            self.error = exc

    def join(self, timeout=3.0):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"
        return self


def test_a_streamed_create_starts_with_response_created(fake, client):
    stream = create_streamed(client, fake, Script.running())

    first = next(stream)

    assert stream.response.headers["content-type"] == "text/event-stream"
    assert (first.type, first.sequence_number) == (CREATED, 0)
    assert first.response.id in fake.responses
    assert first.response.status == "queued"
    assert fake.requests_to(CREATE)[0].body["stream"] is True


def test_closing_the_stream_early_leaves_the_response_running(fake, client):
    stream = create_streamed(client, fake, Script.running())
    response_id = next(stream).response.id

    stream.close()

    wait_for(lambda: fake.open_streams == 0)
    assert fake.body_of(response_id)["status"] == "queued"
    assert fake.count("cancel") == 0


def test_a_time_scripted_response_streams_every_status_to_completion(fake, client):
    events = list(create_streamed(client, fake, Script(advance="time", step_seconds=0.2)))

    assert [(e.type, e.sequence_number) for e in events] == [
        (CREATED, 0), (QUEUED, 1), (IN_PROGRESS, 2), (COMPLETED, 3),
    ]
    assert [e.response.status for e in events] == ["queued", "queued", "in_progress", "completed"]
    assert {e.response.id for e in events} == {events[0].response.id}
    assert json.loads(events[-1].response.output_text)["title"] == "Report: Heat pumps"
    assert events[-1].response.usage.output_tokens > 0
    assert [e["sequence_number"] for e in fake.events_of(events[0].response.id)] == [0, 1, 2, 3]
    assert fake.open_streams == 0


def test_a_resumed_stream_replays_only_later_events_and_follows_to_the_end(fake, client):
    response_id = started(client, fake, Script(advance="time", step_seconds=0.2))

    events = list(client.responses.retrieve(response_id, stream=True, starting_after=1))

    assert [(e.type, e.sequence_number) for e in events] == [(IN_PROGRESS, 2), (COMPLETED, 3)]


def test_a_stream_from_the_start_replays_everything(fake, client):
    fake.script_next(Script(statuses=("completed",)))
    created = client.responses.create(model="gpt-5", input=INPUT, background=True, stream=True)
    response_id = next(created).response.id
    created.close()

    events = list(client.responses.retrieve(response_id, stream=True))

    assert [(e.type, e.sequence_number) for e in events] == [(CREATED, 0), (COMPLETED, 1)]


def test_set_status_ends_a_live_stream_with_response_completed(fake, client):
    response_id = started(client, fake, Script())
    listener = Listener(lambda: client.responses.retrieve(response_id, stream=True, starting_after=1))
    wait_for(lambda: fake.open_streams == 1)

    fake.set_status(response_id, "completed")

    listener.join()
    assert listener.error is None
    assert [(e.type, e.sequence_number) for e in listener.events] == [(COMPLETED, 2)]
    assert listener.events[0].response.output_text


@pytest.mark.parametrize(
    ("script", "last"),
    [(Script.failed(code="server_error"), FAILED), (Script.incomplete(), INCOMPLETE)],
)
def test_a_failed_or_incomplete_script_ends_the_stream_with_its_event(fake, client, script, last):
    script = Script(
        statuses=script.statuses, error=script.error, incomplete_reason=script.incomplete_reason,
        advance="time", step_seconds=0.1,
    )

    events = list(create_streamed(client, fake, script))

    assert [e.type for e in events] == [CREATED, QUEUED, IN_PROGRESS, last]
    if last == FAILED:
        assert events[-1].response.error.code == "server_error"
    else:
        assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_a_cancel_ends_the_stream_without_a_terminal_event(fake, client):
    listener = Listener(lambda: create_streamed(client, fake, Script.running()))
    wait_for(lambda: len(listener.events) == 2)

    client.responses.cancel(listener.events[0].response.id)

    listener.join()
    assert listener.error is None
    assert [e.type for e in listener.events] == [CREATED, QUEUED]
    assert [e["type"] for e in fake.events_of(listener.events[0].response.id)] == [CREATED, QUEUED]
    wait_for(lambda: fake.open_streams == 0)


def test_a_delete_ends_the_stream(fake, client):
    response_id = started(client, fake, Script.running())
    listener = Listener(lambda: client.responses.retrieve(response_id, stream=True, starting_after=1))
    wait_for(lambda: fake.open_streams == 1)

    client.responses.delete(response_id)

    assert listener.join().error is None
    assert listener.events == []


def test_a_response_created_without_stream_cannot_be_streamed(fake, client):
    created = client.responses.create(model="gpt-5", input=INPUT, background=True)

    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.retrieve(created.id, stream=True)

    assert raised.value.param == "stream"
    assert fake.events_of(created.id) == []


def test_a_cut_stream_resumes_with_no_gap_and_no_duplicate(fake, client):
    fake.inject(CREATE, Fault.cut(after_events=1))
    fake.inject(RETRIEVE, Fault.cut(after_events=1))
    seen = []

    with pytest.raises(openai.APIConnectionError):
        for event in create_streamed(client, fake, Script(advance="time", step_seconds=0.1)):
            seen.append(event)
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.retrieve(seen[0].response.id, stream=True, starting_after=0):
            seen.append(event)
    seen += client.responses.retrieve(seen[0].response.id, stream=True, starting_after=seen[-1].sequence_number)

    assert [(e.type, e.sequence_number) for e in seen] == [
        (CREATED, 0), (QUEUED, 1), (IN_PROGRESS, 2), (COMPLETED, 3),
    ]


def test_streaming_retrieves_do_not_advance_a_retrieve_script_but_plain_ones_do(fake, client):
    response_id = started(client, fake, Script())
    listener = Listener(lambda: client.responses.retrieve(response_id, stream=True, starting_after=1))
    wait_for(lambda: fake.open_streams == 1)
    time.sleep(0.1)  # a few looks at the response
    assert fake.responses[response_id].retrieves == 0
    assert listener.events == []

    polled = [client.responses.retrieve(response_id).status, client.responses.retrieve(response_id, stream=False).status]

    listener.join()
    assert polled == ["in_progress", "completed"]
    assert fake.responses[response_id].retrieves == 2
    assert [(e.type, e.sequence_number) for e in listener.events] == [(IN_PROGRESS, 2), (COMPLETED, 3)]
    paths = [r.path for r in fake.requests_to(RETRIEVE)]
    assert len(paths) == 3
    assert "stream=true" in paths[0] and "starting_after=1" in paths[0]
    assert paths[1] == f"/v1/responses/{response_id}"


def test_the_stream_is_server_sent_events_in_a_chunked_body(fake, client):
    response_id = started(client, fake, Script(statuses=("queued", "completed")))
    fake.set_status(response_id, "completed")

    reply = httpx.get(f"{fake.base_url}/responses/{response_id}", params={"stream": "true", "starting_after": 0})

    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["transfer-encoding"] == "chunked"
    assert reply.headers["connection"] == "close"
    assert "content-length" not in reply.headers
    logged = fake.events_of(response_id)[1:]
    assert reply.text == "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in logged)


def test_faults_and_latency_apply_to_streaming_requests(fake, client):
    response_id = started(client, fake, Script.running())
    fake.inject(RETRIEVE, Fault.server_error())
    fake.inject(RETRIEVE, Fault.drop())

    with pytest.raises(openai.InternalServerError):
        client.responses.retrieve(response_id, stream=True)
    with pytest.raises(openai.APIConnectionError):
        client.responses.retrieve(response_id, stream=True)

    fake.latency = 0.3
    begun = time.monotonic()
    stream = client.responses.retrieve(response_id, stream=True)
    first = next(stream)
    stream.close()
    assert time.monotonic() - begun >= 0.3
    assert first.type == CREATED


def test_an_invalid_streamed_create_is_answered_as_a_json_error():
    with ResponsesAPIFake() as fake:
        client = openai.OpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)

        with pytest.raises(openai.BadRequestError) as raised:
            client.responses.create(model="gpt-5", input=INPUT, background=True, store=False, stream=True)

        assert raised.value.param == "store"
        assert fake.responses == {}
        assert len(fake.validation_errors) == 1


@pytest.mark.parametrize(
    "finish",
    ["completed", "failed", "incomplete", "cancel"],
)
def test_every_emitted_event_matches_the_documents_schema(fake, client, finish):
    response_id = started(client, fake, Script(web_search_calls=1, reasoning_tokens=10))
    client.responses.retrieve(response_id)  # in_progress
    if finish == "cancel":
        client.responses.cancel(response_id)
    else:
        fake.set_status(response_id, finish)

    events = fake.events_of(response_id)

    assert [validate_stream_event(event) for event in events] == [[]] * len(events)
    assert len(events) == (3 if finish == "cancel" else 4)
    assert fake.validation_errors == []


def test_validate_stream_event_reports_what_the_document_refuses(fake, client):
    response_id = started(client, fake, Script.running())
    event = fake.events_of(response_id)[0]

    assert validate_stream_event({k: v for k, v in event.items() if k != "sequence_number"})
    assert validate_stream_event({**event, "type": "response.paused"})
    assert validate_stream_event({**event, "response": {**event["response"], "status": "paused"}})


def test_stop_returns_promptly_with_a_stream_open():
    fake = ResponsesAPIFake().start()
    client = openai.OpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0, timeout=5.0)
    listener = Listener(lambda: create_streamed(client, fake, Script.running()))
    wait_for(lambda: fake.open_streams == 1 and len(listener.events) == 2)

    begun = time.monotonic()
    fake.stop()

    assert time.monotonic() - begun < 1.0
    listener.join()
    assert isinstance(listener.error, openai.APIConnectionError)
    wait_for(lambda: fake.open_streams == 0)
    assert fake.internal_errors == []


def test_the_async_client_resumes_a_stream(fake, client):
    response_id = started(client, fake, Script(advance="time", step_seconds=0.2))

    async def resume():
        async with openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0) as aclient:
            stream = await aclient.responses.retrieve(response_id, stream=True, starting_after=1)
            return [(event.type, event.sequence_number) async for event in stream]

    assert aio.run(resume()) == [(IN_PROGRESS, 2), (COMPLETED, 3)]


# --- Error events (`Fault.error_event`) ---------------------------------------------------------

RATE_LIMITED = "Rate limit reached for gpt-5 on tokens per min (TPM). Please try again in 6s."
DELTA = "response.output_text.delta"


def test_a_flat_error_event_on_a_streamed_create_is_yielded_and_the_stream_ends(fake, client):
    fake.inject(CREATE, Fault.error_event(code="rate_limit_exceeded", message=RATE_LIMITED))

    stream = create_streamed(client, fake)
    events = list(stream)  # the SDK yields the documented shape as an event; it raises nothing

    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"] == "text/event-stream"
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, openai.types.responses.ResponseErrorEvent)
    assert (event.type, event.code, event.message, event.param, event.sequence_number) == (
        "error", "rate_limit_exceeded", RATE_LIMITED, None, 0,
    )
    assert fake.responses == {}
    assert fake.count(CREATE) == 1


def test_a_nested_error_event_on_a_streamed_create_raises_a_bare_api_error(fake, client):
    fake.inject(CREATE, Fault.error_event(code="rate_limit_exceeded", message=RATE_LIMITED, nested=True))

    stream = create_streamed(client, fake)  # the create itself returns the stream: 200
    with pytest.raises(openai.APIError) as raised:
        next(stream)

    error = raised.value
    # Not RateLimitError nor any APIStatusError: no status_code, no response; the class alone
    # does not tell a rate limit from a server error, `.code` and `.type` do.
    assert type(error) is openai.APIError
    assert not hasattr(error, "status_code")
    assert (error.code, error.type, error.param, error.message, str(error)) == (
        "rate_limit_exceeded", "requests", None, RATE_LIMITED, RATE_LIMITED,
    )
    assert error.body == {"type": "requests", "code": "rate_limit_exceeded", "message": RATE_LIMITED, "param": None}
    assert error.request.method == "POST"
    assert stream.response.status_code == 200
    assert fake.responses == {}
    assert fake.validation_errors == []  # the nested shape is off the document knowingly


@pytest.mark.parametrize("nested", [False, True])
def test_the_error_stream_on_the_wire(fake, nested):
    fake.inject(CREATE, Fault.error_event(nested=nested))

    reply = httpx.post(f"{fake.base_url}/responses", json={"model": "gpt-5", "input": INPUT, "stream": True})

    assert reply.status_code == 200  # reading the body whole: the stream ended with its last chunk
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["transfer-encoding"] == "chunked"
    message = "The server had an error while processing your request."
    if nested:
        data = {"type": "error", "error": {"type": "server_error", "code": "server_error", "message": message, "param": None}}
    else:
        data = {"type": "error", "code": "server_error", "message": message, "param": None}
    data["sequence_number"] = 0
    assert reply.text == f"event: error\ndata: {json.dumps(data)}\n\n"
    assert bool(validate_stream_event(data)) is nested  # only the flat shape is the document's


@pytest.mark.parametrize(("code", "kind"), [
    ("server_error", "server_error"),
    ("rate_limit_exceeded", "requests"),
    ("insufficient_quota", "insufficient_quota"),
    ("context_length_exceeded", "invalid_request_error"),
])
def test_a_nested_error_event_is_typed_by_its_code(fake, client, code, kind):
    fake.inject(CREATE, Fault.error_event(code=code, message="No.", nested=True))

    with pytest.raises(openai.APIError) as raised:
        list(create_streamed(client, fake))

    assert type(raised.value) is openai.APIError
    assert (raised.value.code, raised.value.type, raised.value.message) == (code, kind, "No.")


def test_a_streaming_retrieve_with_an_error_event_leaves_the_response_running(fake, client):
    response_id = started(client, fake, Script(advance="time", step_seconds=0.3))
    fake.inject(RETRIEVE, Fault.error_event(), times=2)

    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=1))
    from_start = list(client.responses.retrieve(response_id, stream=True))

    assert [(e.type, e.code, e.sequence_number) for e in resumed] == [("error", "server_error", 2)]
    assert [(e.type, e.sequence_number) for e in from_start] == [("error", 0)]
    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=1))
    assert [(e.type, e.sequence_number) for e in rest] == [(IN_PROGRESS, 2), (COMPLETED, 3)]
    assert [e["type"] for e in fake.events_of(response_id)] == [CREATED, QUEUED, IN_PROGRESS, COMPLETED]
    assert fake.open_streams == 0


def test_requests_not_answered_with_a_stream_use_the_error_event_up_as_usual(fake, client):
    fake.inject(CREATE, Fault.error_event())
    fake.inject(RETRIEVE, Fault.error_event(), times=2)

    created = client.responses.create(model="gpt-5", input=INPUT, background=True)
    polled = client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_unknown", stream=True)
    streamed = [e.type for e in create_streamed(client, fake, Script(statuses=("completed",)))]

    assert created.status == "queued" and polled.status == "in_progress"
    assert streamed == [CREATED, COMPLETED]
    assert len(fake.responses) == 2


# --- Text deltas (`Script(text_deltas=k)`) -------------------------------------------------------


def test_text_deltas_follow_in_progress_and_replay_from_the_middle(fake, client):
    events = list(create_streamed(client, fake, Script(advance="time", step_seconds=0.2, text_deltas=5)))

    assert [(e.type, e.sequence_number) for e in events] == [
        (CREATED, 0), (QUEUED, 1), (IN_PROGRESS, 2),
        (DELTA, 3), (DELTA, 4), (DELTA, 5), (DELTA, 6), (DELTA, 7),
        (COMPLETED, 8),
    ]
    final = events[-1].response
    deltas = events[3:8]
    assert all(isinstance(e, openai.types.responses.ResponseTextDeltaEvent) for e in deltas)
    assert {(e.item_id, e.output_index, e.content_index) for e in deltas} == {(final.output[0].id, 0, 0)}
    assert all(e.logprobs == [] and e.delta for e in deltas)
    assert "".join(e.delta for e in deltas) == final.output_text
    logged = fake.events_of(final.id)
    assert [validate_stream_event(e) for e in logged] == [[]] * 9

    rest = list(client.responses.retrieve(final.id, stream=True, starting_after=4))

    assert [(e.type, e.sequence_number) for e in rest] == [(DELTA, 5), (DELTA, 6), (DELTA, 7), (COMPLETED, 8)]
    assert [e.delta for e in rest[:3]] == [e.delta for e in deltas[2:]]


@pytest.mark.parametrize("final", ["completed", "incomplete"])
def test_text_deltas_come_before_the_end_when_in_progress_is_skipped(fake, client, final):
    response_id = started(client, fake, Script(statuses=("queued", final), text_deltas=3))

    polled = client.responses.retrieve(response_id)  # plain: the body as ever, no deltas in it

    events = fake.events_of(response_id)
    assert [e["type"] for e in events] == [CREATED, QUEUED, DELTA, DELTA, DELTA, f"response.{final}"]
    assert [e["sequence_number"] for e in events] == list(range(6))
    assert "".join(e["delta"] for e in events[2:5]) == polled.output_text
    assert polled.status == final
    assert [validate_stream_event(e) for e in events] == [[]] * 6


def test_no_text_deltas_without_text_or_by_default(fake, client):
    refused = started(client, fake, Script(statuses=("queued", "completed"), refusal="No.", text_deltas=3))
    plain = started(client, fake, Script(statuses=("queued", "completed")))
    for response_id in (refused, plain):
        fake.set_status(response_id, "completed")

    assert [e["type"] for e in fake.events_of(refused)] == [CREATED, QUEUED, COMPLETED]
    assert [e["type"] for e in fake.events_of(plain)] == [CREATED, QUEUED, COMPLETED]
    with pytest.raises(ValueError):
        Script(text_deltas=-1)


def test_the_async_client_resumes_a_stream_in_the_middle_of_text_deltas(fake, client):
    response_id = started(client, fake, Script(advance="time", step_seconds=0.2, text_deltas=3))

    async def resume():
        async with openai.AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0) as aclient:
            stream = await aclient.responses.retrieve(response_id, stream=True, starting_after=3)
            return [event async for event in stream]

    events = aio.run(resume())

    assert [(e.type, e.sequence_number) for e in events] == [(DELTA, 4), (DELTA, 5), (COMPLETED, 6)]
    whole = [e["delta"] for e in fake.events_of(response_id)[3:6]]
    assert [e.delta for e in events[:2]] == whole[1:]
    assert "".join(whole) == events[-1].response.output_text
