"""Reads: scoped querysets and report lookups shared by the admin, the API and the CLI."""

from __future__ import annotations

from django.db.models import QuerySet

from reportdesk.errors import NotFound

from .models import Artifact, ArtifactKind, JobAttempt, JobEvent, ReportJob
from .policy import user_roles


def jobs_visible_to(user) -> QuerySet[ReportJob]:
    """Jobs of the workspaces `user` belongs to (every job for a superuser)."""
    qs = ReportJob.objects.all()
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(workspace_id__in=list(user_roles(user)))


def job_events(*, job: ReportJob) -> QuerySet[JobEvent]:
    return job.events.select_related("actor").order_by("at", "id")


def report_attempt(*, job: ReportJob, version: int | None = None) -> JobAttempt:
    """The attempt that produced report `version` (the latest when None)."""
    attempts = job.attempts.filter(version__isnull=False)
    attempt = attempts.filter(version=version).first() if version else attempts.order_by("-version").first()
    if attempt is None:
        if version:
            raise NotFound(f"Report {job.public_id} has no version {version}.")
        raise NotFound(f"Report {job.public_id} has no draft yet.")
    return attempt


def report_artifact(*, job: ReportJob, kind: str, version: int | None = None) -> tuple[Artifact, int]:
    attempt = report_attempt(job=job, version=version)
    artifact = Artifact.objects.filter(attempt=attempt, kind=kind).first()
    if artifact is None:
        raise NotFound(f"Version {attempt.version} of report {job.public_id} has no {kind}.")
    return artifact, attempt.version


def report_markdown(*, job: ReportJob, version: int | None = None) -> str:
    return report_artifact(job=job, kind=ArtifactKind.REPORT_MARKDOWN, version=version)[0].content


def report_versions(*, job: ReportJob) -> list[int]:
    return list(job.attempts.filter(version__isnull=False).order_by("version").values_list("version", flat=True))
