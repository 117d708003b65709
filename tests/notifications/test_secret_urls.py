"""A webhook's or chat channel's URL is often its credential: the job page, seen by everyone
in the workspace, names a receiver by its host, errors included (a slow receiver's timeout
once quoted the whole URL), and so do the logs."""

from __future__ import annotations

import socket
import threading

import pytest

from jobs import services as jobs_services
from jobs.models import ReportJob
from notifications import services
from notifications.models import ChatChannel, EndpointDelivery, Notice
from tests.factories import ReportJobFactory

pytestmark = pytest.mark.django_db

TOKEN = "T0KEN-ab12cd34ef56"


@pytest.fixture
def silent_server(settings):
    """Accepts connections on loopback and never answers (a receiver that is down but
    holds the connection, or just slow)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def sent_section(client, job) -> str:
    html = client.get(f"/admin/jobs/reportjob/{job.public_id}/change/").content.decode()
    start = html.index('id="sent"')
    return html[start: html.index("</section>", start)]


def test_a_slow_webhook_receiver_is_named_by_its_host_alone(client, silent_server, committed, ws, operator, requester, template):
    url = f"http://localhost:{silent_server}/hooks/{TOKEN}"
    services.endpoint_create(workspace=ws, actor=operator, url=url, events=["job.canceled"])
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()

    committed(jobs_services.job_cancel, job=job, actor=operator, reason="No longer needed")

    delivery = EndpointDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1  # the try timed out
    client.force_login(requester)  # a requester, not an operator of the endpoint
    html = sent_section(client, job)
    assert "localhost" in html
    assert TOKEN not in html, f"the receiver's full URL is on the job page: {delivery.last_error!r}"


def test_a_slow_chat_webhook_is_named_by_its_host_alone_on_the_page_and_in_the_log(caplog, client, silent_server, committed, ws, operator, requester, template):
    ChatChannel.objects.create(workspace=ws, url=f"http://localhost:{silent_server}/services/T000/B000/{TOKEN}")
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()

    committed(jobs_services.job_fail, job=job, failure_class="provider_error", message="The provider failed.")

    notice = Notice.objects.get(channel="chat")
    assert notice.status == "failed"
    client.force_login(requester)
    html = sent_section(client, job)
    assert TOKEN not in html, f"the chat channel's secret URL is on the job page: {notice.error!r}"
    assert "localhost" in notice.error
    assert TOKEN not in caplog.text
