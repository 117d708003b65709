"""SIGTERM to a real qcluster in the middle of a job's step: the step finishes, the job's
lease is released, the dispatcher hands over, and recovery finds nothing to clean up."""

import time

import pytest

from jobs import services
from jobs.worker import dispatcher
from jobs.models import ProviderCall, WorkerHeartbeat
from reportdesk.models import Role
from sources.models import SourceStatus
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.sources.conftest import site  # noqa: F401  (the loopback web server fixture)
from tests.workers import wait_for

SOURCE = b"European battery recycling capacity reached 410,000 tonnes a year in 2025, mostly mechanical."


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigterm_mid_step_finishes_the_step_and_leaves_no_lease(worker, site, settings):  # noqa: F811
    settings.SOURCE_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    # a source that takes about three seconds to read: the step is still running when SIGTERM comes
    site.route("/note.txt", body=SOURCE, headers={"Content-Type": "text/plain"}, trickle=3.0 / len(SOURCE))
    workspace = WorkspaceFactory(slug="research-ops")
    job = services.job_submit(
        workspace=workspace, requested_by=member(workspace, Role.REQUESTER), template=ReportTemplateFactory(),
        topic="Battery recycling capacity", sources=[SourceSpec(url=site.url("/note.txt"))],
    )
    process = worker(SOURCE_ALLOWED_INTERNAL_HOSTS="localhost", LOCAL_PROVIDER_SECONDS="30")
    wait_for(lambda: "/note.txt" in site.requests, timeout=30, message=lambda: f"the source fetch; log:\n{process.log()}")
    job.refresh_from_db()
    assert job.lease_token, "the worker holds the job while it reads the source"
    # the dispatcher, enqueued when the worker spawned, may start just after the job's own task
    wait_for(lambda: WorkerHeartbeat.objects.filter(name="dispatcher").exclude(owner="").exists(), timeout=5,
             message=lambda: f"a dispatcher to run; log:\n{process.log()}")

    # when the cluster is told to stop
    stopping = time.monotonic()
    process.terminate()
    wait_for(lambda: process.running() == 0, timeout=20, message=lambda: f"the cluster to stop; log:\n{process.log()}")
    took = time.monotonic() - stopping

    # then the step it was in finished: the source was read and the response started
    job.refresh_from_db()
    assert job.status == "running"
    assert [item.status for item in job.source_manifest.items.all()] == [SourceStatus.READY]
    call = ProviderCall.objects.get(job=job)
    assert call.provider_response_id and call.status != "lost"
    # and nothing is left for recovery: no lease on the job, the dispatcher's lease handed over
    assert (job.lease_token, job.lease_expires_at) == ("", None)
    assert WorkerHeartbeat.objects.get(name="dispatcher").owner == ""
    assert dispatcher.recovery_sweep() == 0
    # within a few seconds of the source's answer, not the dispatcher's 60 s run
    assert took < 10, f"stopping took {took:.1f} s"
    assert "Traceback" not in process.log(), process.log()


def test_a_sigterm_while_the_process_runs_its_exit_hooks_does_not_cut_them_short(monkeypatch):
    """Idle, a worker process exits at SIGTERM; once it is running its exit hooks (handing
    its streams back), a SIGTERM (django-q2's guard after a task's timeout) only waits."""
    import signal
    import threading

    from jobs.worker import graceful_stop

    for name in ("_stop", "_busy", "_exiting"):
        monkeypatch.setattr(graceful_stop, name, threading.Event())
    with pytest.raises(SystemExit):
        graceful_stop._on_sigterm(signal.SIGTERM, None)

    graceful_stop.exit_begun()
    graceful_stop._on_sigterm(signal.SIGTERM, None)  # no SystemExit
    assert graceful_stop.stop_requested()

    # Only while the hook runs: after it, a SIGTERM ends the process again (whatever is left
    # of its exit, such as threads a timed-out task left behind, must not keep it alive).
    graceful_stop.exit_ended()
    with pytest.raises(SystemExit):
        graceful_stop._on_sigterm(signal.SIGTERM, None)
