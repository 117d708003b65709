"""Fixtures for the REST API: one workspace with a person in each role, an outsider who
belongs to another workspace, token-authenticated clients, and jobs in any state."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import RETRYABLE_FAILURES, ArtifactKind, JobAttempt, ReportJob
from reportdesk.models import Role
from tests.factories import ArtifactFactory, ReportJobFactory, ReportTemplateFactory, WorkspaceFactory, member

TERMINAL = ("completed", "failed", "canceled", "expired", "rejected")


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Throttle counters live in the cache, which outlives a test; ids are reused.
    cache.clear()
    yield
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def ws():
    return WorkspaceFactory(slug="acme", name="Acme Research")


@pytest.fixture
def other_ws():
    return WorkspaceFactory(slug="globex", name="Globex")


@pytest.fixture
def requester(ws):
    return member(ws, Role.REQUESTER, "rita")


@pytest.fixture
def reviewer(ws):
    return member(ws, Role.REVIEWER, "victor")


@pytest.fixture
def operator(ws):
    return member(ws, Role.OPERATOR, "olga")


@pytest.fixture
def outsider(other_ws):
    """An operator — of another workspace."""
    return member(other_ws, Role.OPERATOR, "oscar")


@pytest.fixture
def template():
    return ReportTemplateFactory(slug="brief", name="Brief", review_required=True)


@pytest.fixture
def make_job(ws, requester, template):
    """A job in `status` (queued by default), requested by `requester` unless told otherwise."""

    def make(status="queued", *, failure_class="provider_error", draft=False, **kwargs):
        kwargs.setdefault("workspace", ws)
        kwargs.setdefault("requested_by", requester)
        kwargs.setdefault("template", template)
        archived_at = kwargs.pop("archived_at", None)
        job = ReportJobFactory(**kwargs)
        fields = {"status": status, "archived_at": archived_at}
        if status == "failed":
            fields["failure_class"] = failure_class
            fields["failure_retryable"] = failure_class in RETRYABLE_FAILURES
        if status in TERMINAL or status == "needs_review":
            fields["finished_at"] = timezone.now()
        ReportJob.objects.filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
        if draft:
            add_draft(job)
        return job

    return make


REPORT = {
    "title": "Battery recycling in Europe",
    "executive_summary": "Capacity grew 40% in 2025 [S1].",
    "sections": [
        {"heading": "Overview", "body": "Recycling recovers lithium [S1].", "citations": ["S1"]},
        {"heading": "Findings", "body": "Capacity grew 40% in 2025 [S1].", "citations": ["S1"]},
    ],
    "evidence": [{"claim": "Capacity grew", "source_id": "S1", "quote": "Capacity grew 40% in 2025."}],
    "recommendations": [],
    "open_questions": [],
    "source_notes": [],
}


def add_draft(job: ReportJob, *, version: int | None = None) -> JobAttempt:
    """Store a draft (every artifact kind) as the job's current attempt's report `version`."""
    import json

    attempt = job.current_attempt
    version = version or (job.version + 1)
    if attempt.version is not None:
        attempt = JobAttempt.objects.create(job=job, number=attempt.number + 1, reason="revision", manifest=job.source_manifest)
    JobAttempt.objects.filter(pk=attempt.pk).update(version=version, status="succeeded")
    contents = {
        ArtifactKind.REPORT_MARKDOWN: f"# {REPORT['title']} v{version}\n\nCapacity grew 40% in 2025 [S1].",
        ArtifactKind.STRUCTURED_JSON: json.dumps({**REPORT, "title": f"{REPORT['title']} v{version}"}),
        ArtifactKind.RENDERED_HTML: f"<h1>{REPORT['title']} v{version}</h1><p>Capacity grew 40% in 2025 [S1].</p>",
        ArtifactKind.CITATIONS: json.dumps([{"source_id": "S1", "in_manifest": True, "title": "Source", "url": ""}]),
    }
    for kind, content in contents.items():
        ArtifactFactory(attempt=attempt, job=job, kind=kind, content=content)
    ReportJob.objects.filter(pk=job.pk).update(version=version, current_attempt=attempt)
    job.refresh_from_db()
    return attempt


def approval(**extra) -> dict:
    """A review body that approves with every checklist item confirmed."""
    from reviews.models import CHECKLIST

    return {"decision": "approve", "checklist": dict.fromkeys(CHECKLIST, True), **extra}


def error_of(response) -> dict:
    """The error object of a response, after checking the contract's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]
