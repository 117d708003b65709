"""The one hook in the job lifecycle: every JobEvent hands its id to the notifications app
after commit, and a broker that is down never fails the change that made the event; the
database is the outbox, so an event the broker never took is handed out by a sweep."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from django.utils import timezone

from jobs import services as jobs_services
from jobs.models import JobEvent, ReportJob
from notifications import services, tasks
from notifications.models import EndpointDelivery, HandledEvent
from tests.factories import ReportJobFactory
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


def _broker_down(*args, **kwargs):
    raise ConnectionError("broker unreachable")


def _aged(job, minutes: float) -> None:
    JobEvent.objects.filter(job=job).update(at=timezone.now() - dt.timedelta(minutes=minutes))


def test_an_event_the_broker_never_took_is_handed_out_by_the_sweep_once(monkeypatch, receiver, committed, ws, operator, requester, template):
    services.endpoint_create(workspace=ws, actor=operator, url=receiver.url(), events=["job.canceled"])
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="running")
    with monkeypatch.context() as m:  # the broker is down while the cancel commits
        m.setattr("jobs.queue.async_task", _broker_down)
        committed(jobs_services.job_cancel, job=job, actor=operator, reason="No longer needed")
    assert not EndpointDelivery.objects.exists()

    # the broker is back: a sweep leaves the event to its own task for a while ...
    assert tasks.events_missed() == 0
    # ... and then hands it out, once
    _aged(job, minutes=6)
    assert committed(tasks.events_missed) == 1
    assert committed(tasks.events_missed) == 0

    [request] = receiver.requests
    assert json.loads(request.body)["type"] == "job.canceled"
    assert EndpointDelivery.objects.get().status == "succeeded"


def test_events_handed_over_as_usual_get_their_receipt_and_old_ones_are_left(committed, ws, operator, requester, template):
    job = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    ReportJob.objects.filter(pk=job.pk).update(status="running")
    committed(jobs_services.job_cancel, job=job, actor=operator)
    _aged(job, minutes=6)
    assert HandledEvent.objects.filter(event__job=job).count() == job.events.count() == 1
    assert tasks.events_missed() == 0

    # an event older than a day is history, not news: never handed out (its task never ran:
    # the test's transaction does not commit)
    other = ReportJobFactory(workspace=ws, requested_by=requester, template=template)
    jobs_services.job_cancel(job=other, actor=operator)
    assert not HandledEvent.objects.filter(event__job=other).exists()
    _aged(other, minutes=60 * 25)
    assert tasks.events_missed() == 0
