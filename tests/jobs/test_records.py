"""Earlier reports quoted as sources (internal records): jobs resolves them for sources."""

import pytest
from django.utils import timezone

from jobs import services
from jobs.models import JobAttempt, ReportJob
from reportdesk.errors import ValidationFailed
from sources.services import SourceSpec, sources_from_specs
from tests.factories import ArtifactFactory, ReportJobFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db


def test_an_approved_report_of_the_same_workspace_is_an_internal_record():
    job = ReportJobFactory()
    ReportJob.objects.filter(pk=job.pk).update(status="completed", finished_at=timezone.now())
    job.refresh_from_db()
    ArtifactFactory(attempt=job.current_attempt, job=job, kind="report_md", content="# Earlier report\n\nCapacity grew [S1].")
    JobAttempt.objects.filter(pk=job.current_attempt_id).update(version=1)
    requester = member(job.workspace, "requester")

    [item] = sources_from_specs(
        workspace=job.workspace, created_by=requester, specs=[SourceSpec(record_job_id=job.public_id)],
        record=services.job_as_record_source,
    )

    assert item.kind == "record" and item.record_job == job and item.status == "ready"
    assert "Capacity grew" in item.text and job.public_id in item.title


def test_records_must_be_completed_reports_of_the_same_workspace():
    running = ReportJobFactory()
    other_workspace = WorkspaceFactory()
    with pytest.raises(ValidationFailed) as exc:
        services.job_as_record_source(workspace=running.workspace, public_id=running.public_id)
    assert "not completed" in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        sources_from_specs(
            workspace=other_workspace, created_by=None, specs=[SourceSpec(record_job_id=running.public_id)],
            record=services.job_as_record_source,
        )
    assert "does not exist in this workspace" in exc.value.message
