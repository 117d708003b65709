"""Responses created as streams, and followed later through their events, via the real
`openai` SDK against the loopback fake."""

from __future__ import annotations


import pytest

from jobs.providers.base import COMPLETED, FAILED, QUEUED, ProviderError
from jobs.providers.openai_provider import OpenAIProvider
from tests import aio
from tests.fakes.responses_api import CREATE, RETRIEVE, Fault, Script

from .test_openai_provider import API_KEY, fake, make_request  # noqa: F401 (fake is a fixture)


@pytest.fixture
def provider(fake):
    return OpenAIProvider(api_key=API_KEY, base_url=fake.base_url, timeout=5.0, stream=True)


def _until_end(provider, response_id, *, after):
    """(the status the stream ended with or "", the number of the last event read)."""

    async def follow():
        streams = provider.stream_follower(timeout=5.0)
        status, cursor = "", after
        try:
            async for cursor, status in streams.events(response_id, after=after):
                if status:
                    break
            return status, cursor
        finally:
            await streams.aclose()

    return aio.run(follow())


def test_a_streamed_create_reads_the_first_event_and_leaves_the_response_running(fake, provider):
    fake.default_script = Script(advance="time", step_seconds=0.3)

    state = provider.create(make_request())

    (create,) = fake.requests_to(CREATE)
    assert create.body["stream"] is True and create.body["background"] is True
    assert state.status == QUEUED and state.stream_cursor == 0
    assert state.id in fake.responses
    # Closing the stream did not stop it: it goes on to the end at the fake.
    assert _until_end(provider, state.id, after=state.stream_cursor)[0] == COMPLETED


def test_following_a_stream_returns_its_end_and_the_last_event_read(fake, provider):
    state = provider.create(make_request())
    fake.set_status(state.id, COMPLETED)

    status, cursor = _until_end(provider, state.id, after=state.stream_cursor)

    assert status == COMPLETED
    assert cursor == fake.events_of(state.id)[-1]["sequence_number"]
    (follow,) = [r for r in fake.requests_to(RETRIEVE) if "stream=true" in r.path]
    assert f"starting_after={state.stream_cursor}" in follow.path
    assert fake.responses[state.id].retrieves == 0  # a stream is not a poll


def test_a_failed_response_ends_its_stream_as_failed(fake, provider):
    fake.script_next(Script.failed(advance="time", step_seconds=0.1))
    state = provider.create(make_request())
    assert _until_end(provider, state.id, after=state.stream_cursor)[0] == FAILED


def test_a_cancelled_response_closes_its_stream_without_an_end(fake, provider):
    state = provider.create(make_request())
    provider.cancel(state.id)
    assert _until_end(provider, state.id, after=state.stream_cursor)[0] == ""


def test_a_stream_cut_short_raises_a_passing_error_and_can_be_followed_on(fake, provider):
    fake.script_next(Script(advance="time", step_seconds=0.2))
    state = provider.create(make_request())
    fake.inject(RETRIEVE, Fault.cut(after_events=1))

    with pytest.raises(ProviderError) as cut:
        _until_end(provider, state.id, after=state.stream_cursor)
    assert cut.value.transient and cut.value.code == "connection_error"
    assert _until_end(provider, state.id, after=state.stream_cursor)[0] == COMPLETED


def test_a_stream_of_a_response_created_without_one_is_refused(fake):
    plain = OpenAIProvider(api_key=API_KEY, base_url=fake.base_url, timeout=5.0)
    state = plain.create(make_request())
    assert state.stream_cursor is None
    with pytest.raises(ProviderError) as refused:
        _until_end(plain, state.id, after=0)
    assert not refused.value.transient and refused.value.status_code == 400


def test_an_account_that_may_not_stream_gets_plain_creates_from_then_on(fake, provider):
    fake.inject(CREATE, Fault.bad_request("Your organization must be verified to stream this model.", param="stream"))

    state = provider.create(make_request())
    again = provider.create(make_request())

    first, second, third = fake.requests_to(CREATE)
    assert first.body["stream"] is True
    assert "stream" not in second.body and "stream" not in third.body
    assert state.stream_cursor is None and again.stream_cursor is None
    assert len(fake.responses) == 2  # the refused create started nothing
    assert provider.streams is False


def test_another_bad_request_is_not_taken_for_a_refused_stream(fake, provider):
    fake.inject(CREATE, Fault.bad_request("Unsupported parameter: 'temperature'.", param="temperature"))
    with pytest.raises(ProviderError) as refused:
        provider.create(make_request())
    assert refused.value.failure_class == "validation_error"
    assert fake.count(CREATE) == 1 and provider.streams is True


@pytest.mark.parametrize("fault", [Fault.cut(after_events=0), Fault.drop(processed=True)], ids=["cut", "dropped"])
def test_a_create_stream_that_breaks_before_the_response_is_ambiguous(fake, provider, fault):
    """The request reached the provider: a response may run, so the worker reconciles
    (connection_error) rather than creating again."""
    fake.inject(CREATE, fault)
    with pytest.raises(ProviderError) as broken:
        provider.create(make_request())
    assert broken.value.transient and broken.value.code == "connection_error"
    assert fake.count(CREATE) == 1


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize(
    "code, transient, expected_code",
    [
        ("rate_limit_exceeded", True, "rate_limit_exceeded"),  # nothing started: retried after a backoff
        ("insufficient_quota", False, "insufficient_quota"),  # the breaker's: every job waits
        ("server_error", True, "connection_error"),  # a response may have started: reconciled first
    ],
)
def test_an_error_event_before_the_response_is_classified_by_its_code(fake, provider, nested, code, transient, expected_code):
    fake.inject(CREATE, Fault.error_event(code=code, message="Stopped.", nested=nested))
    with pytest.raises(ProviderError) as stopped:
        provider.create(make_request())
    assert (stopped.value.transient, stopped.value.code) == (transient, expected_code)
    assert "Stopped." in stopped.value.message
    assert fake.responses == {}


def test_a_rate_limit_in_the_stream_backs_every_job_off_as_a_429_does(fake, provider):
    from jobs.breaker import is_shared_rate_limit

    fake.inject(CREATE, Fault.error_event(code="rate_limit_exceeded", nested=True))
    with pytest.raises(ProviderError) as limited:
        provider.create(make_request())
    assert is_shared_rate_limit(limited.value)


def test_a_stream_full_of_deltas_is_followed_to_its_end_by_number(fake, provider):
    fake.script_next(Script(advance="time", step_seconds=0.2, text_deltas=40))
    state = provider.create(make_request())

    status, cursor = _until_end(provider, state.id, after=state.stream_cursor)

    assert status == COMPLETED
    assert cursor == 2 + 40 + 1  # queued, in progress, 40 deltas, completed


def test_a_stream_cut_among_its_deltas_goes_on_from_the_last_one_read(fake, provider):
    fake.script_next(Script(advance="time", step_seconds=0.2, text_deltas=10))
    state = provider.create(make_request())
    fake.inject(RETRIEVE, Fault.cut(after_events=6))  # queued, in progress, 4 deltas

    async def follow():
        streams = provider.stream_follower(timeout=5.0)
        seen = []
        try:
            with pytest.raises(ProviderError):
                async for number, _ in streams.events(state.id, after=state.stream_cursor):
                    seen.append(number)
            async for number, status in streams.events(state.id, after=seen[-1]):
                seen.append(number)
                if status:
                    return seen, status
        finally:
            await streams.aclose()

    seen, status = aio.run(follow())
    assert status == COMPLETED and seen == list(range(1, 14))  # every event once, none skipped


def test_a_compatible_endpoint_that_answers_a_streamed_create_with_json_keeps_the_response(fake, provider, monkeypatch):
    """Some endpoints that speak the Responses API ignore `stream`: their JSON answer is the
    response itself, and its id must not be lost (a lost id would be created twice)."""
    real = type(fake)._create

    def create_ignoring_stream(self, body, now):
        return real(self, {key: value for key, value in body.items() if key != "stream"}, now)

    monkeypatch.setattr(type(fake), "_create", create_ignoring_stream)
    state = provider.create(make_request())
    assert state.id in fake.responses and state.stream_cursor is None and state.status == QUEUED


def test_a_stream_whose_events_carry_no_event_line_still_ends(fake, provider, monkeypatch):
    """The `event:` line is optional in Server-Sent Events: the end is read from the data."""
    import json

    from tests.fakes import responses_api

    def data_only(handler, event):
        data = f"data: {json.dumps(event)}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    monkeypatch.setattr(responses_api._Handler, "_write_event", data_only)
    fake.script_next(Script(advance="time", step_seconds=0.2, text_deltas=3))
    state = provider.create(make_request())

    assert _until_end(provider, state.id, after=state.stream_cursor) == (COMPLETED, 2 + 3 + 1)


def test_a_json_answer_missing_fields_the_schema_requires_still_gives_the_id(fake, provider, monkeypatch):
    from tests.fakes import responses_api

    real = type(fake)._create

    def bare_answer(self, body, now):
        reply = real(self, {key: value for key, value in body.items() if key != "stream"}, now)
        return responses_api._Reply(200, {"id": reply.body["id"], "object": "response", "status": "queued"})

    monkeypatch.setattr(type(fake), "_create", bare_answer)
    state = provider.create(make_request())
    assert state.id in fake.responses and state.status == QUEUED and state.stream_cursor is None
