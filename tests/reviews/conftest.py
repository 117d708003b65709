"""Drafts for review tests: crafted reports stored through the worker's own store step, so
the artifacts are exactly what a provider's answer would leave."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from jobs.worker import step
from jobs.models import ReportJob
from jobs.providers.base import COMPLETED, ResponseState
from reportdesk.models import Role
from tests.factories import (
    ReportJobFactory,
    ReportTemplateFactory,
    SourceItemFactory,
    SourceManifestFactory,
    WorkspaceFactory,
    member,
)

RECYCLING = (
    "Battery recycling recovers lithium, cobalt and nickel from spent cells. "
    "European recycling capacity grew 40% in 2025, driven by new plants in Germany and Poland."
)
PRICES = (
    "Black mass prices fell sharply in the second half of 2025. "
    "Analysts expect prices to recover as electric vehicle volumes rise."
)
OLD_STUDY = "An early study found that recycling lithium was rarely economic at the time."

# Every check passes on this report against SOURCES (with freshness off).
CLEAN_REPORT = {
    "title": "Battery recycling in Europe",
    "executive_summary": "European recycling capacity grew 40% in 2025 [S1]. Black mass prices fell late in the year [S2].",
    "sections": [
        {"heading": "Overview", "body": "Recycling recovers lithium, cobalt and nickel from spent cells [S1].", "citations": ["S1"]},
        {"heading": "Findings", "body": "Capacity grew 40% in 2025, with new plants in Germany and Poland [S1]. Prices fell [S2].", "citations": ["S1", "S2"]},
    ],
    "evidence": [
        {"claim": "Capacity grew 40% in 2025.", "source_id": "S1", "quote": "European recycling capacity grew 40% in 2025"},
        {"claim": "Prices fell.", "source_id": "S2", "quote": "Black mass prices fell sharply in the second half of 2025."},
    ],
    "recommendations": ["Track black mass prices monthly."],
    "open_questions": ["How much capacity is planned for 2027?"],
    "source_notes": [{"source_id": "S1", "note": "Industry association data."}],
}


def report_with(**changes) -> dict:
    """CLEAN_REPORT with some keys replaced (a deep copy: tests may mutate it)."""
    report = json.loads(json.dumps(CLEAN_REPORT))
    report.update(changes)
    return report


def store_draft(job: ReportJob, report: dict, *, response_id: str | None = None) -> ReportJob:
    """Store `report` as the draft of the job's current attempt, as the worker does when the
    provider answers: the job goes running → needs_review with a new version."""
    ReportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now())
    job.refresh_from_db()
    state = ResponseState(id=response_id or f"resp_{job.public_id}_{job.current_attempt.number}", status=COMPLETED, output_text=json.dumps(report))
    step.result_store(job=job, attempt=job.current_attempt, state=state)
    job.refresh_from_db()
    return job


@pytest.fixture
def workspace():
    return WorkspaceFactory(slug="research-ops", name="Research Ops")


@pytest.fixture
def template():
    return ReportTemplateFactory(slug="market-scan-test", name="Market scan (test)", required_sections=["Overview", "Findings"], freshness_days=0)


@pytest.fixture
def reviewer(workspace):
    return member(workspace, Role.REVIEWER, username="rita")


@pytest.fixture
def make_draft(workspace, template):
    """A job in needs_review whose draft is `report`, written from two dated sources (S1, S2)
    and any `extra_sources`."""

    def _make(report=None, *, extra_sources=(), template=template, workspace=workspace, published=None, **job_fields):
        published = published or timezone.now().date() - dt.timedelta(days=30)
        items = [
            SourceItemFactory(workspace=workspace, title="Recycling capacity 2025", text=RECYCLING, published_at=published, url="https://example.org/capacity"),
            SourceItemFactory(workspace=workspace, title="Black mass prices", text=PRICES, published_at=published),
            *extra_sources,
        ]
        manifest = SourceManifestFactory(workspace=workspace, items=items)
        job = ReportJobFactory(workspace=workspace, template=template, source_manifest=manifest, **job_fields)
        return store_draft(job, CLEAN_REPORT if report is None else report)

    return _make
