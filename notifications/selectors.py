"""Reads: who hears about what, the endpoints and deliveries a person may see, and what was
sent about a job."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from jobs.models import JobStatus, ReportJob
from jobs.policy import operated_workspace_ids
from reportdesk.errors import NotFound
from reportdesk.models import Role
from sources.urls import url_host

from .models import DraftReady, EndpointDelivery, Notice, NotificationPreference, WebhookEndpoint


def _scoped(qs: QuerySet, user, path: str = "workspace_id") -> QuerySet:
    ids = operated_workspace_ids(user)
    return qs if ids is None else qs.filter(**{f"{path}__in": ids})


def endpoints_visible_to(user) -> QuerySet[WebhookEndpoint]:
    """The endpoints of the workspaces `user` operates (every endpoint for a superuser)."""
    return _scoped(WebhookEndpoint.objects.select_related("workspace"), user)


def deliveries_visible_to(user) -> QuerySet[EndpointDelivery]:
    return _scoped(EndpointDelivery.objects.select_related("endpoint__workspace", "job"), user, "endpoint__workspace_id")


def endpoint_of(*, user, pk: int) -> WebhookEndpoint:
    endpoint = endpoints_visible_to(user).filter(pk=pk).first()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {pk} among those of the workspaces you operate.")
    return endpoint


def endpoint_deliveries(*, endpoint: WebhookEndpoint) -> QuerySet[EndpointDelivery]:
    return endpoint.deliveries.select_related("job").order_by("-created_at", "-id")


def preference_of(user) -> NotificationPreference:
    """The person's choices; the defaults (unsaved) when they never chose."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def _with_email(qs: QuerySet) -> QuerySet:
    return qs.filter(is_active=True).exclude(email="")


def reviewers_for_draft(job: ReportJob) -> QuerySet:
    """The workspace's reviewers who want a mail for each draft (not the report's requester)."""
    users = get_user_model().objects.filter(memberships__workspace_id=job.workspace_id, memberships__role=Role.REVIEWER)
    users = users.exclude(pk=job.requested_by_id).exclude(
        notification_preference__draft_ready__in=[DraftReady.DIGEST, DraftReady.OFF]
    )
    return _with_email(users).order_by("pk")


def requester_wants_updates(job: ReportJob) -> bool:
    user = job.requested_by
    if not user.is_active or not user.email:
        return False
    return not NotificationPreference.objects.filter(user=user, report_updates=False).exists()


def digest_readers() -> QuerySet:
    """Reviewers who chose the daily digest."""
    users = get_user_model().objects.filter(
        memberships__role=Role.REVIEWER, notification_preference__draft_ready=DraftReady.DIGEST
    ).distinct()
    return _with_email(users).order_by("pk")


def drafts_waiting_for(user) -> list[ReportJob]:
    """Drafts waiting for review in the workspaces where `user` reviews, oldest first."""
    workspaces = user.memberships.filter(role=Role.REVIEWER).values("workspace_id")
    return list(
        ReportJob.objects.filter(status=JobStatus.NEEDS_REVIEW, workspace_id__in=workspaces)
        .exclude(requested_by=user)
        .select_related("workspace", "template")
        .order_by("finished_at", "id")[:100]
    )


def operators_to_alert(workspace_id: int | None) -> QuerySet:
    """The operators of a workspace (of every workspace, and the superusers, when None) who
    want operator alerts."""
    users = get_user_model().objects.all()
    operators = Q(memberships__role=Role.OPERATOR)
    if workspace_id is not None:
        users = users.filter(operators, memberships__workspace_id=workspace_id)
    else:
        users = users.filter(operators | Q(is_superuser=True))
    users = users.exclude(notification_preference__operator_alerts=False).distinct()
    return _with_email(users).order_by("pk")


@dataclass(frozen=True)
class SentLine:
    """One thing sent about a job, for its page."""

    at: dt.datetime
    channel: str
    to: str
    what: str
    status: str
    detail: str = ""


def job_notices(*, job: ReportJob) -> list[SentLine]:
    """Mails, chat messages and webhook deliveries about `job`, oldest first (two queries).
    People are named by username, not address."""
    lines = [
        SentLine(at=n.created_at, channel=n.get_channel_display(), to=n.user.get_username() if n.user else n.recipient,
                 what=n.get_kind_display(), status=n.status, detail=n.error)
        for n in Notice.objects.filter(job=job).select_related("user").order_by("created_at", "id")
    ]
    # Only the host: a receiver's URL may carry a token in its path, and everyone in the
    # workspace sees this page.
    for d in EndpointDelivery.objects.filter(job=job).select_related("endpoint").order_by("created_at", "id"):
        code = f"HTTP {d.last_status_code}" if d.last_status_code else ""
        tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
        lines.append(SentLine(at=d.created_at, channel="Webhook", to=url_host(d.endpoint.url), what=d.event_type, status=d.status,
                              detail=" · ".join(x for x in (tries, code, d.last_error if d.status != "succeeded" else "") if x)))
    return sorted(lines, key=lambda line: line.at)
