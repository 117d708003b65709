"""The one hook in the job lifecycle: every JobEvent hands its id to the notifications app
after commit, and a broker that is down never fails the change that made the event."""

from __future__ import annotations

import logging

import pytest

from jobs import services as jobs_services
from tests.oncommit import is_event_notify
from sources.services import SourceSpec

pytestmark = pytest.mark.django_db


def test_every_event_is_handed_over_once_after_commit(django_capture_on_commit_callbacks, ws, requester, template):
    with django_capture_on_commit_callbacks() as callbacks:
        job = jobs_services.job_submit(
            workspace=ws, requested_by=requester, template=template, topic="Heat pumps",
            sources=[SourceSpec(title="Notes", text="Sales doubled.")],
        )
        jobs_services.job_cancel(job=job, actor=requester)

    handed = [c.args[1:] for c in callbacks if is_event_notify(c)]
    assert handed == [(event.pk,) for event in job.events.order_by("id")]
    assert len(handed) == 2


def test_a_broker_that_is_down_does_not_fail_the_change(django_capture_on_commit_callbacks, monkeypatch, caplog, ws, requester, template):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("jobs.queue.async_task", broker_down)
    job = jobs_services.job_submit(
        workspace=ws, requested_by=requester, template=template, topic="Heat pumps",
        sources=[SourceSpec(title="Notes", text="Sales doubled.")],
    )

    with caplog.at_level(logging.ERROR, logger="jobs.queue"), django_capture_on_commit_callbacks(execute=True):
        canceled = jobs_services.job_cancel(job=job, actor=requester, reason="Wrong topic")

    assert canceled.status == "canceled"
    assert "could not enqueue enqueue_event_notify" in caplog.text
