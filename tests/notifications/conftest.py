"""The edges of notifications, for real: an SMTP server on loopback (aiosmtpd) that keeps
every mail it receives, and an HTTP receiver on loopback that answers webhook deliveries
with the statuses a test lines up and keeps every request. Tasks run inline (django-q2's
sync mode) when a test asks for `inline_tasks`."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import environ
import pytest
from aiosmtpd.controller import Controller

from tests.api.conftest import (  # noqa: F401  (the people and workspaces of the API tests)
    operator,
    other_ws,
    requester,
    reviewer,
    template,
    ws,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    to: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return self.message["subject"]

    @property
    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


class Inbox:
    """aiosmtpd's handler: every mail the server accepted."""

    def __init__(self):
        self.mails: list[Mail] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append(Mail(to=list(envelope.rcpt_tos), message=message))
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1; Django mails go to it (configured as EMAIL_URL would)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    config = environ.Env.email_url_config(f"smtp://127.0.0.1:{controller.port}")
    for key, value in config.items():
        if value not in (None, ""):
            setattr(settings, key, value)
    settings.EMAIL_USE_TLS = False
    settings.SITE_URL = "https://reports.example.com"
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """What the webhook receiver answers (statuses in turn, then 200) and what it received."""

    def __init__(self, port: int):
        self.port = port
        self.statuses: deque[int] = deque()
        self.requests: list[Received] = []

    def url(self, path: str = "/hooks") -> str:
        return f"http://localhost:{self.port}{path}"

    def answer(self, *statuses: int) -> None:
        self.statuses.extend(statuses)


@pytest.fixture
def receiver(settings):
    """An HTTP server on 127.0.0.1, reachable as `localhost` because the test allows that
    host past the SSRF guard (SOURCE_ALLOWED_INTERNAL_HOSTS), as an operator could."""
    state = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)))
            status = state.statuses.popleft() if state.statuses else 200
            body = b"ok" if status < 300 else b"receiver trouble"
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def inline_tasks(monkeypatch, settings):
    """django-q2 runs each enqueued task at once, in this thread and transaction; a task
    that fails fails the test."""
    from django_q.conf import Conf
    from django_q.models import Task

    monkeypatch.setattr(Conf, "SYNC", True)
    # Each inline run "spawns" a worker, which would start the jobs dispatcher inline too.
    settings.TICK_SECONDS = 0
    yield
    failures = list(Task.objects.filter(success=False).values_list("name", "result"))
    assert failures == [], failures


@pytest.fixture
def committed(django_capture_on_commit_callbacks, inline_tasks):
    """`committed(fn, *args, **kwargs)`: call fn, then run what it left for after commit, as
    a real commit would (tasks inline). The test's own transaction never commits."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run
