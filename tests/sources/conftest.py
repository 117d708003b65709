"""A loopback web server for the fetcher tests, and a guard that keeps them on loopback.

The server answers on 127.0.0.1 and, where the machine supports it, on [::1] with the same
port, and records every request path, so a test can assert that a refused URL fetched
nothing. The guard is a Python audit hook: it records every outgoing socket connect while a
test uses the `connections` fixture and fails the connect if it is not to loopback, so a
fetcher bug can never send a packet to a private range during the tests.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# Audit hooks cannot be removed, so one is installed for the session and only records (and
# guards) while a test holds the `connections` fixture.
_recording: list[list[tuple]] = []


def _guard_connects(event: str, args: tuple) -> None:
    if event != "socket.connect" or not _recording:
        return
    address = args[1]
    _recording[-1].append(address)
    host = address[0] if isinstance(address, tuple) else str(address)
    try:
        loopback = ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RuntimeError(f"a test tried to connect to {address}, which is not loopback")


sys.addaudithook(_guard_connects)


@pytest.fixture
def connections() -> Iterator[list[tuple]]:
    """Every socket address the code under test connects to during the test."""
    made: list[tuple] = []
    _recording.append(made)
    yield made
    _recording.remove(made)


@dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True
    hang: bool = False  # never answer (until the test ends)
    trickle: float = 0.0  # seconds between body bytes


class LoopbackSite:
    """What the server answers, and what it was asked."""

    def __init__(self, *, port: int, has_ipv6: bool):
        self.port = port
        self.has_ipv6 = has_ipv6
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.user_agents: list[str] = []
        self.finished = threading.Event()

    def route(self, path: str, **kwargs: object) -> None:
        self.routes[path] = Route(**kwargs)  # type: ignore[arg-type]

    def url(self, path: str, *, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        site = self.server.site
        site.requests.append(self.path)
        site.user_agents.append(self.headers.get("User-Agent", ""))
        route = site.routes.get(self.path, Route(status=404, body=b"no such page"))
        if route.hang:
            site.finished.wait(timeout=30)
            return
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        # The client hangs up on purpose in the size and time limit tests.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if not route.trickle:
                self.wfile.write(route.body)
                return
            for index in range(len(route.body)):
                if site.finished.wait(timeout=route.trickle):
                    return
                self.wfile.write(route.body[index : index + 1])
                self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the site's request list is the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: LoopbackSite  # set once the port, and so the site, is known

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup for the server name; not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]


class _Server6(_Server):
    address_family = socket.AF_INET6


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    server4 = _Server(("127.0.0.1", 0))
    port = server4.server_address[1]
    try:
        server6: _Server | None = _Server6(("::1", port))
    except OSError:
        server6 = None
    site = LoopbackSite(port=port, has_ipv6=server6 is not None)
    servers = [server for server in (server4, server6) if server is not None]
    threads = []
    for server in servers:
        server.site = site
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        threads.append(thread)
    yield site
    site.finished.set()
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
