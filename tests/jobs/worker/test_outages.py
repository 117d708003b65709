"""Real worker processes (`manage.py qcluster`) killed and starved: a killed worker's job moves
on within 30 s with the default lease; a create cut off by a SIGKILL leaves no response
running unseen; a broker outage delays work and loses nothing."""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.test import Client, override_settings

from jobs import services
from jobs.models import Artifact, ProviderCall, ReportJob
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.fakes.responses_api import CREATE, Fault, Script, make_webhook_secret, webhook_delivery
from tests.fakes.tcp_proxy import TcpProxy
from tests.workers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TEXT = "European battery recycling capacity reached 410,000 tonnes a year in 2025."


def _submit(sources):
    workspace = WorkspaceFactory(slug="research-ops")
    return services.job_submit(
        workspace=workspace, requested_by=member(workspace, Role.REQUESTER), template=ReportTemplateFactory(),
        topic="Battery recycling capacity in Europe", sources=sources,
    )


def _status(job) -> str:
    job.refresh_from_db()
    return job.status


class SlowFirstSite:
    """A loopback page whose first request hangs (the worker fetching it gets killed); later
    requests answer at once. Records when each request came."""

    def __init__(self):
        self.requests: list[float] = []
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(time.monotonic())
                if len(site.requests) == 1:
                    site.release.wait(120)
                body = f"<html><body><p>{TEXT}</p></body></html>".encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://localhost:{self.server.server_address[1]}/note.html"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_site():
    site = SlowFirstSite()
    yield site
    site.close()


def test_a_killed_workers_job_moves_on_within_30_seconds_with_the_default_lease(worker, slow_site, settings):
    """The worker dies mid-step (fetching a source). With the default LEASE_SECONDS its lease
    was renewed while it worked and runs out within 20 s of its death; the next worker's step
    (fetching the source again) comes within 30 s."""
    env = {"SOURCE_ALLOWED_INTERNAL_HOSTS": "localhost", "SOURCE_FETCH_TIMEOUT": "120", "TICK_INTERVAL": "0.5"}
    assert "LEASE_SECONDS" not in env and "LEASE_SECONDS" not in os.environ
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    job = _submit([SourceSpec(url=slow_site.url)])
    first = worker(**env)
    wait_for(lambda: slow_site.requests, timeout=45, message=lambda: f"the first fetch; log:\n{first.log()}")
    # Longer than a lease: the heartbeat renews it, so no other worker of the cluster steps in.
    time.sleep(25)
    assert len(slow_site.requests) == 1 and _status(job) == "preparing"

    first.kill()
    killed_at = time.monotonic()
    second = worker(**env)
    wait_for(lambda: len(slow_site.requests) >= 2, timeout=40, message=lambda: f"the next step; log:\n{second.log()}")
    assert slow_site.requests[1] - killed_at < 30
    wait_for(lambda: _status(job) == "needs_review", timeout=45, message=lambda: f"needs_review ({job.status}); log:\n{second.log()}")
    assert Artifact.objects.filter(job=job).count() == 6


def test_a_sigkill_mid_create_ends_with_exactly_one_live_response_and_the_other_canceled(worker, openai_fake, settings):
    """The provider started a response, then the worker making the create was killed before
    the answer came. The next worker reconciles: no second create within the window, then
    one; when the first response finishes and its webhook names it, it is kept (the same
    request, already paid for) and the second is canceled."""
    settings.OPENAI_WEBHOOK_SECRET = make_webhook_secret()
    openai_fake.script_next(Script.running(), Script.running())
    openai_fake.inject(CREATE, Fault.delay(120))
    env = {
        "REPORT_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_fake.base_url,
        "OPENAI_TIMEOUT_SECONDS": "300", "LEASE_SECONDS": "4", "CREATE_RECONCILE_SECONDS": "15",
    }
    job = _submit([SourceSpec(title="Market note", text=TEXT)])

    first = worker(**env)
    wait_for(lambda: openai_fake.count(CREATE) == 1, timeout=45, message=lambda: f"a create; log:\n{first.log()}")
    first.kill()
    (started,) = openai_fake.responses

    second = worker(**env)
    wait_for(lambda: openai_fake.count(CREATE) == 2, timeout=60, message=lambda: f"a second create; log:\n{second.log()}")
    created = [r for r in openai_fake.responses if r != started][0]
    wait_for(lambda: _status(job) == "running", timeout=20, message="running on the second response")
    lost, again = ProviderCall.objects.filter(job=job).order_by("id")
    assert lost.status == "lost" and again.provider_response_id == created
    assert (again.created_at - lost.created_at).total_seconds() >= 15  # not before the window's end

    openai_fake.set_status(started, "completed")
    body, headers = webhook_delivery(started, "response.completed", secret=settings.OPENAI_WEBHOOK_SECRET)
    assert Client().post("/webhooks/openai/", data=body, content_type="application/json", headers=headers).json() == {"status": "to_match"}

    wait_for(lambda: _status(job) == "needs_review", timeout=40, message=lambda: f"needs_review ({job.status}); log:\n{second.log()}")
    wait_for(lambda: openai_fake.body_of(created)["status"] == "cancelled", timeout=20, message="the second response canceled")
    assert openai_fake.count(CREATE) == 2
    assert openai_fake.body_of(started)["status"] == "completed"
    calls = {c.provider_response_id: c for c in ProviderCall.objects.filter(job=job)}
    assert (calls[started].orphan, calls[started].status) == (False, "completed")
    assert calls[created].orphan
    assert Artifact.objects.filter(job=job).count() == 6
    actions = [e.action for e in job.events.order_by("id")]
    assert {"provider_call_unconfirmed", "provider_call_lost", "provider_orphan_found"} <= set(actions)


def test_a_broker_outage_delays_work_and_loses_nothing(worker, monkeypatch):
    """Redis (the broker and the throttle cache) is unreachable: a submit still answers 201
    with the job, reads work; once Redis is back the job runs."""
    redis_url = os.environ.get("REDIS_TEST_URL")
    if not redis_url:
        pytest.skip("REDIS_TEST_URL is not set (make test starts Redis and sets it)")
    from django_q.conf import Conf
    from rest_framework.authtoken.models import Token

    upstream = urlsplit(redis_url)
    with TcpProxy(upstream=(upstream.hostname, upstream.port or 6379)) as proxy:
        broker_url = f"redis://127.0.0.1:{proxy.port}/5"
        import redis

        redis.Redis.from_url(broker_url).flushdb()
        proxy.down()
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", broker_url + "?socket_connect_timeout=1&socket_timeout=2")
        cache = {"BACKEND": "reportdesk.cache.RedisCache", "LOCATION": broker_url,
                 "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2}}

        workspace = WorkspaceFactory(slug="acme")
        requester = member(workspace, Role.REQUESTER)
        ReportTemplateFactory(slug="brief")
        token = Token.objects.create(user=requester)
        client = Client(headers={"Authorization": f"Token {token.key}"})
        body = {"workspace": "acme", "template": "brief", "topic": "Battery recycling", "sources": [{"text": TEXT}]}
        with override_settings(CACHES={"default": cache}):
            submitted = client.post("/api/v1/jobs/", data=body, content_type="application/json")
            assert submitted.status_code == 201, submitted.content
            job = ReportJob.objects.get(public_id=submitted.json()["id"])
            assert client.get("/api/v1/jobs/").status_code == 200
            assert client.get(f"/api/v1/jobs/{job.public_id}/").json()["status"] == "queued"

        proxy.up()
        process = worker(REDIS_URL=broker_url)
        wait_for(lambda: _status(job) == "needs_review", timeout=60, message=lambda: f"needs_review ({job.status}); log:\n{process.log()}")
        assert [e.action for e in job.events.order_by("id")] == ["submitted", "preparing", "started", "draft_ready"]
