"""Structured logs: one job followed across the web app, a real worker and its dispatcher by
the public id on every line of its work."""

import datetime as dt
import io
import json
import logging

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs import services
from jobs.models import ReportJob
from reportdesk.logs import logging_config, structured_formatter
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member
from tests.workers import wait_for

SOURCE = "European battery recycling capacity reached 410,000 tonnes a year in 2025."


@pytest.fixture
def web_log():
    """The web app's log lines, as the JSON formatter of production writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structured_formatter(fmt="json"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_an_unknown_format_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        logging_config(fmt="xml", level="INFO")


@pytest.mark.django_db
def test_a_request_about_a_job_logs_its_id_and_the_request_id(web_log):
    workspace = WorkspaceFactory(slug="research-ops")
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory(slug="brief")
    api = APIClient()
    api.force_authenticate(requester)

    submitted = api.post(
        "/api/v1/jobs/",
        {"workspace": "research-ops", "template": "brief", "topic": "Battery recycling", "sources": [{"title": "Note", "text": SOURCE}]},
        format="json",
    )
    assert submitted.status_code == 201
    public_id = submitted.json()["id"]
    assert api.get(f"/api/v1/jobs/{public_id}/").status_code == 200

    lines = web_log()
    submit_event = next(line for line in lines if line.get("action") == "submitted")
    assert submit_event["job"] == public_id and submit_event["request_id"]
    follow = [line for line in lines if line.get("request") == f"GET /api/v1/jobs/{public_id}/"]
    assert {line["event"] for line in follow} == {"request_started", "request_finished"}
    assert all(line["job"] == public_id and line["request_id"] for line in follow)
    # each request has its own id
    assert len({line["request_id"] for line in lines if "request_id" in line}) == 2
    assert template.pk


@pytest.mark.django_db
def test_a_sign_in_callbacks_code_and_state_are_not_logged(web_log, client):
    client.get("/oidc/callback/?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj&next=/admin/")

    requests = [line["request"] for line in web_log() if "request" in line]
    assert requests and all("SplxlOBeZQQYbYS6WxSbIA" not in r and "af0ifjsldkj" not in r for r in requests)
    assert "GET /oidc/callback/?code=[redacted]&state=[redacted]&next=/admin/" in requests


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_line_of_a_jobs_run_in_the_worker_and_dispatcher_carries_its_id(worker):
    workspace = WorkspaceFactory(slug="research-ops")
    requester = member(workspace, Role.REQUESTER)
    template = ReportTemplateFactory()

    def submit(topic):
        return services.job_submit(
            workspace=workspace, requested_by=requester, template=template, topic=topic,
            sources=[SourceSpec(title="Market note", text=SOURCE)],
        )

    job = submit("Battery recycling capacity")
    # a second job is already past its deadline: the dispatcher's expiry sweep expires it
    late = submit("Last quarter's outlook")
    ReportJob.objects.filter(pk=late.pk).update(deadline=timezone.now() - dt.timedelta(minutes=1))

    process = worker(LOG_FORMAT="json")
    wait_for(lambda: ReportJob.objects.get(pk=job.pk).status == "needs_review" and ReportJob.objects.get(pk=late.pk).status == "expired",
             timeout=45, message=lambda: f"needs_review and expired; worker log:\n{process.log()}")
    lines = json_lines(process.log())
    assert lines, process.log()

    # the worker: every step and every state change of the job, with its attempt
    of_job = [line for line in lines if line.get("job") == job.public_id]
    events = [line["action"] for line in of_job if "action" in line]
    assert events == ["preparing", "started", "draft_ready"]
    steps = [line["event"] for line in of_job if line["event"].startswith("worker step")]
    assert steps[:2] == ["worker step on a queued job", "worker step on a running job"]
    assert all(line["attempt"] == 1 for line in of_job), of_job
    # and the id of django-q2's task that ran each step, one per step
    step_lines = [line for line in of_job if line["event"].startswith("worker step")]
    assert all(line["task_id"] for line in step_lines)
    assert len({line["task_id"] for line in step_lines}) == len(step_lines)
    # no line of the worker's job code goes without the job it is about
    job_code = [line for line in lines if line["logger"] in ("jobs.worker.step", "jobs.events", "jobs.services")]
    assert all(line.get("job") for line in job_code), [line for line in job_code if not line.get("job")]

    # the dispatcher: the expiry it made carries the job and the dispatcher's token
    expired = next(line for line in lines if line.get("action") == "expired")
    assert expired["job"] == late.public_id and expired["dispatcher"] and expired["actor"] == "scheduler"
    assert "attempt" not in expired  # nothing of another job's step leaks into the dispatcher's lines
