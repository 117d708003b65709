"""How a job's audit event reads to the outside: its webhook event types, its payload, and
whom it concerns. Pure reads of a JobEvent (with its job loaded); no database writes."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from jobs.models import JobEvent, JobStatus, ReportJob

from .models import EventType

STATUS_EVENT = {
    JobStatus.NEEDS_REVIEW: EventType.JOB_NEEDS_REVIEW,
    JobStatus.COMPLETED: EventType.JOB_COMPLETED,
    JobStatus.REJECTED: EventType.JOB_REJECTED,
    JobStatus.FAILED: EventType.JOB_FAILED,
    JobStatus.CANCELED: EventType.JOB_CANCELED,
    JobStatus.EXPIRED: EventType.JOB_EXPIRED,
}


def status_changed(event: JobEvent) -> bool:
    return bool(event.from_status) and event.from_status != event.to_status


def event_types(event: JobEvent) -> list[str]:
    """The webhook event types one audit event stands for (none for most of them)."""
    if event.action == "submitted":
        return [EventType.JOB_CREATED]
    if not status_changed(event):
        return []
    types = [EventType.JOB_STATUS_CHANGED]
    if event.to_status in STATUS_EVENT:
        types.append(STATUS_EVENT[event.to_status])
    return types


def is_draft_ready(event: JobEvent) -> bool:
    return status_changed(event) and event.to_status == JobStatus.NEEDS_REVIEW


def requester_outcome(event: JobEvent) -> str:
    """What happened to the requester's report, in words ("" when it is not news for them)."""
    if not status_changed(event):
        return ""
    if event.to_status == JobStatus.COMPLETED:
        return "approved" if event.from_status == JobStatus.NEEDS_REVIEW else "completed"
    if event.to_status == JobStatus.QUEUED and event.from_status == JobStatus.NEEDS_REVIEW:
        return "sent back for revision"
    return {JobStatus.REJECTED: "rejected", JobStatus.FAILED: "failed", JobStatus.EXPIRED: "expired"}.get(event.to_status, "")


def site_link(path: str) -> str:
    return settings.SITE_URL + path


def admin_link(name: str, *args) -> str:
    """The full address of an admin page, reversed through the admin's routes alone
    (reportdesk.admin_urls: a worker need not load the API to build a link)."""
    return site_link(reverse(name, args=args, urlconf="reportdesk.admin_urls"))


def job_page_link(job: ReportJob) -> str:
    return admin_link("admin:jobs_reportjob_change", job.public_id)


def review_page_link(job: ReportJob) -> str:
    return admin_link("admin:reviews_review_draft", job.public_id)


def payload(*, event: JobEvent, event_type: str) -> dict:
    """The body of a webhook message, Standard Webhooks' `{type, timestamp, data}` shape.
    The job as the event left it, and where to read more; no report content."""
    job = event.job
    return {
        "type": event_type,
        "timestamp": event.at.isoformat(),
        "data": {
            "id": job.public_id,
            "workspace": job.workspace.slug,
            "template": job.template.slug,
            "topic": job.topic,
            "status": event.to_status,
            "previous_status": event.from_status or None,
            "review_state": event.to_review_state,
            "failure_class": (event.details or {}).get("failure_class"),
            "version": (event.details or {}).get("version", job.version),
            "url": site_link(f"/api/v1/jobs/{job.public_id}/"),
            "event": {"id": event.pk, "action": event.action, "actor": event.actor_label, "at": event.at.isoformat()},
        },
    }
