"""The built-in local provider keeps the provider's background contract."""

import datetime as dt
import json

import jsonschema
import pytest
import time_machine
from django.utils import timezone

from jobs import services
from jobs.worker import step
from jobs.models import Artifact
from jobs.providers.base import ProviderError, ReportRequest, SourceDoc
from jobs.providers.local import LocalProvider
from jobs.report_schema import REPORT_SCHEMA
from reportdesk.models import Role
from sources.services import SourceSpec
from tests.factories import ReportTemplateFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

TEXT = "European battery recycling capacity reached 410,000 tonnes a year in 2025. Lithium recovery lags."


def request(topic="Battery recycling capacity"):
    return ReportRequest(
        job_id="abc", attempt=1, step="report", model="local-extractive", instructions="Write a report.",
        input_text="Topic: ...", topic=topic, audience="Board",
        sources=(SourceDoc(sid="S1", title="Note", text=TEXT, published=dt.date(2026, 1, 2)),),
        output_schema=REPORT_SCHEMA, required_sections=("Overview",),
    )


def test_queued_then_in_progress_then_completed_over_a_few_seconds():
    provider = LocalProvider(seconds=8)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        created = provider.create(request())
        assert created.status == "queued" and created.id.startswith("resp_local_")
        clock.shift(3)
        assert provider.retrieve(created.id).status == "in_progress"
        clock.shift(6)
        done = provider.retrieve(created.id)
        assert provider.retrieve(created.id).output_text == done.output_text  # stable once written
    assert done.status == "completed"
    report = json.loads(done.output_text)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert "offline extractive draft" in report["executive_summary"]
    assert all(row["quote"] in TEXT for row in report["evidence"])
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0


def test_cancel_stops_it_and_cancelling_a_finished_response_returns_it():
    provider = LocalProvider(seconds=8)
    running = provider.create(request())
    assert provider.cancel(running.id).status == "cancelled"
    assert provider.retrieve(running.id).status == "cancelled"
    finished = LocalProvider(seconds=0).create(request())
    assert provider.cancel(finished.id).status == "completed"


def test_unknown_response_is_a_clear_not_transient_error():
    with pytest.raises(ProviderError) as exc:
        LocalProvider().retrieve("resp_local_missing")
    assert not exc.value.transient and exc.value.status_code == 404


@pytest.mark.parametrize(
    "fault, status, check",
    [
        ("fail", "failed", lambda s: s.error_code == "server_error"),
        ("policy", "failed", lambda s: "policy" in s.error_code),
        ("incomplete", "incomplete", lambda s: s.incomplete_reason == "max_output_tokens"),
    ],
)
def test_injected_response_faults(fault, status, check):
    state = LocalProvider(seconds=0, fault=fault).create(request())
    state = LocalProvider(seconds=0, fault=fault).retrieve(state.id)
    assert state.status == status and check(state)


def test_injected_create_faults_and_the_topic_marker():
    with pytest.raises(ProviderError) as exc:
        LocalProvider(fault="create_transient").create(request())
    assert exc.value.transient
    with pytest.raises(ProviderError) as exc:
        LocalProvider().create(request(topic="Recycling [local:create_error]"))
    assert not exc.value.transient and exc.value.failure_class == "validation_error"


def test_the_local_provider_runs_a_whole_job_to_a_report_that_cites_its_sources():
    workspace = WorkspaceFactory()
    requester = member(workspace, Role.REQUESTER)
    job = services.job_submit(
        workspace=workspace, requested_by=requester, template=ReportTemplateFactory(required_sections=["Overview", "Risks"]),
        topic="Battery recycling capacity", sources=[SourceSpec(title="Note", text=TEXT)],
    )
    for _ in range(2):
        step.job_advance(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "needs_review" and job.model == "local-extractive" and float(job.cost_usd) == 0
    markdown = Artifact.objects.get(job=job, kind="report_md").content
    assert "## Overview" in markdown and "## Risks" in markdown and "[S1]" in markdown
    html = Artifact.objects.get(job=job, kind="report_html").content
    assert "<h2>Overview</h2>" in html and "<script" not in html
