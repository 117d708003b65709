"""Writes: what goes out about a job event, webhook endpoints and their deliveries, operator
alerts, the review digest and people's choices.

Everything that sends is idempotent, because django-q2 runs a task at least once: a mail or
chat message claims its Notice row (unique `dedupe_key`) before it is sent, so a second run
sends nothing (at most once); a webhook delivery is claimed with a conditional UPDATE before
each try and is never tried again once it succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from functools import partial

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.timesince import timesince

from jobs import queue as jobs_queue
from jobs.models import ACTIVE_STATUSES, ArtifactKind, JobEvent, JobStatus, ReportJob
from jobs.policy import operated_workspace_ids
from jobs.selectors import report_artifact
from reportdesk.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from reportdesk.models import Workspace
from sources.fetching import SourceFetchError, check_url, post_url
from sources.urls import url_host

from . import chat, events, selectors, signing
from .mail import mail_deliver, mail_render
from .models import (
    ALL_EVENTS,
    Channel,
    ChatChannel,
    DeliveryAttempt,
    DeliveryStatus,
    DraftReady,
    EndpointDelivery,
    EventType,
    HandledEvent,
    Notice,
    NoticeKind,
    NoticeStatus,
    NotificationPreference,
    WebhookEndpoint,
)
from .queue import enqueue_delivery

log = logging.getLogger(__name__)


# --- A job event → mails, chat, webhooks -------------------------------------------------


def job_event_notify(*, event_id: int) -> None:
    """Everything one audit event of a job sends: webhook deliveries, mails, a chat message."""
    event = (
        JobEvent.objects.select_related("job__workspace", "job__template", "job__requested_by")
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        return
    types = events.event_types(event)
    if types:
        webhooks_fan_out(event=event, types=types)
    if events.is_draft_ready(event):
        _mail_reviewers(event)
    if events.requester_outcome(event):
        _mail_requester(event)
    if events.is_draft_ready(event) or (events.status_changed(event) and event.to_status == JobStatus.FAILED):
        _chat_post(event)
    HandledEvent.objects.bulk_create([HandledEvent(event=event)], ignore_conflicts=True)


def log_prune(*, batch: int = 1000, batches: int = 50) -> int:
    """Delete what was sent (webhook deliveries with their tries, mails and chat messages)
    more than NOTIFICATION_LOG_DAYS ago, once it is settled (delivered or given up on); the
    audit trail of the job itself stays. Returns how many rows went."""
    days = settings.NOTIFICATION_LOG_DAYS
    if not days:
        return 0
    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted = 0
    for model, settled in (
        (EndpointDelivery, [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]),
        # A mail still "sending" that old is one whose task was killed mid-send: settled too.
        (Notice, [NoticeStatus.SENT, NoticeStatus.FAILED, NoticeStatus.SENDING]),
    ):
        for _ in range(batches):
            ids = list(model.objects.filter(created_at__lt=cutoff, status__in=settled).order_by("id").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted


# The events the sweep looks at: old enough that their own task had its chance (a queue
# that is merely busy), recent enough that news is still news.
MISSED_EVENT_GRACE = dt.timedelta(minutes=5)
MISSED_EVENT_HORIZON = dt.timedelta(days=1)


def events_missed_enqueue(*, limit: int = 500) -> int:
    """Hand out again the recent job events that have no receipt: their task was never
    enqueued (the broker was down when they committed) or was lost. Every part of
    `job_event_notify` happens once however often it runs, so a late duplicate sends nothing
    twice. Receipts past the horizon are pruned. Returns how many events were handed out."""
    now = timezone.now()
    missed = (
        JobEvent.objects.filter(at__gte=now - MISSED_EVENT_HORIZON, at__lte=now - MISSED_EVENT_GRACE)
        .filter(~Exists(HandledEvent.objects.filter(event=OuterRef("pk"))))
        .order_by("at", "id")
        .values_list("pk", flat=True)
    )
    ids = list(missed[:limit])
    for event_id in ids:  # the task jobs enqueues after each event's commit
        jobs_queue.enqueue_safely(jobs_queue.enqueue_event_notify, event_id)
    HandledEvent.objects.filter(at__lt=now - MISSED_EVENT_HORIZON - dt.timedelta(hours=1)).delete()
    if ids:
        log.warning("handed out %d job events again whose notifications were never made", len(ids))
    return len(ids)


def _report_title(job: ReportJob) -> str:
    """The draft's title, as the model wrote it (untrusted: the templates escape it)."""
    try:
        artifact, _ = report_artifact(job=job, kind=ArtifactKind.STRUCTURED_JSON)
        title = json.loads(artifact.content).get("title", "")
    except (NotFound, ValueError, AttributeError):
        return ""
    return title[:300] if isinstance(title, str) else ""


def _mail_reviewers(event: JobEvent) -> None:
    job = event.job
    context = {
        "job": job,
        "title": _report_title(job),
        "version": (event.details or {}).get("version", job.version),
        "link": events.review_page_link(job),
    }
    for user in selectors.reviewers_for_draft(job):
        mail_send(
            kind=NoticeKind.DRAFT_READY, user=user, job=job, template="draft_ready", context=context,
            subject=f"Draft ready for review: {job.topic}", dedupe_key=f"draft_ready:{event.pk}:{user.pk}",
        )


def _mail_requester(event: JobEvent) -> None:
    job = event.job
    if event.actor_id is not None and event.actor_id == job.requested_by_id:
        return  # they did it themselves
    if not selectors.requester_wants_updates(job):
        return
    outcome = events.requester_outcome(event)
    context = {
        "job": job,
        "outcome": outcome,
        "reason": event.reason,
        "actor": event.actor_label,
        "failure_class": job.get_failure_class_display() if outcome == "failed" else "",
        "link": events.job_page_link(job),
    }
    mail_send(
        kind=NoticeKind.REPORT_UPDATE, user=job.requested_by, job=job, template="report_update", context=context,
        subject=f"Your report was {outcome}: {job.topic}", dedupe_key=f"report_update:{event.pk}",
    )


def _chat_post(event: JobEvent) -> Notice | None:
    job = event.job
    channel = ChatChannel.objects.filter(workspace_id=job.workspace_id, is_active=True).first()
    if channel is None:
        return None
    if event.to_status == JobStatus.NEEDS_REVIEW:
        headline, link, label, detail = "Draft ready for review", events.review_page_link(job), "Review it", ""
    else:
        headline, link, label = "Report failed", events.job_page_link(job), "Open the job"
        detail = f"{job.get_failure_class_display() or 'Failed'}: {event.reason}"[:500]
    notice = _notice_claim(
        channel=Channel.CHAT, kind=NoticeKind.DRAFT_READY if event.to_status == JobStatus.NEEDS_REVIEW else NoticeKind.REPORT_UPDATE,
        workspace_id=job.workspace_id, job=job, recipient="chat channel", subject=f"{headline}: {job.topic}"[:300],
        dedupe_key=f"chat:{event.pk}",
    )
    if notice is None:
        return None
    body = chat.chat_body(headline=f"{headline} · {job.public_id}", topic=job.topic, link=link, link_label=label, detail=detail)
    try:
        result = post_url(
            channel.url, body=body, headers={"content-type": "application/json"},
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS, allowed_hosts=settings.SOURCE_ALLOWED_INTERNAL_HOSTS,
        )
        error = "" if 200 <= result.status_code < 300 else f"HTTP {result.status_code}: {result.body[:200]}"
    except SourceFetchError as exc:
        error = exc.message
    return _notice_finish(notice, error=error)


# --- Mails -------------------------------------------------------------------------------


def _notice_claim(**fields) -> Notice | None:
    """Create the Notice, or None when its dedupe_key was already claimed (sent or being sent)."""
    try:
        with transaction.atomic():
            return Notice.objects.create(**fields)
    except IntegrityError:
        return None


def _notice_finish(notice: Notice, *, error: str) -> Notice:
    notice.status = NoticeStatus.FAILED if error else NoticeStatus.SENT
    notice.error = error
    notice.sent_at = None if error else timezone.now()
    notice.save(update_fields=["status", "error", "sent_at"])
    if error:
        log.warning("notice %s (%s to %s) failed: %s", notice.pk, notice.kind, notice.recipient, error)
    return notice


def mail_send(
    *, kind: str, user, template: str, context: dict, subject: str, dedupe_key: str,
    job: ReportJob | None = None, workspace_id: int | None = None,
) -> Notice | None:
    """Send one mail to `user`, once per `dedupe_key`. Returns its Notice (None if already sent)."""
    notice = _notice_claim(
        channel=Channel.EMAIL, kind=kind, user=user, job=job,
        workspace_id=workspace_id if workspace_id is not None else (job.workspace_id if job else None),
        recipient=user.email, subject=subject[:300], dedupe_key=dedupe_key[:200],
    )
    if notice is None:
        return None
    try:
        text, html = mail_render(template=template, context={**context, "user": user})
        mail_deliver(to=user.email, subject=subject, text=text, html=html)
        error = ""
    except Exception as exc:  # SMTP and socket errors alike: recorded on the notice, shown on the job page
        error = f"{type(exc).__name__}: {exc}"[:1000]
    return _notice_finish(notice, error=error)


# --- Operators ---------------------------------------------------------------------------

OPERATOR_SUBJECTS = {
    NoticeKind.PROVIDER_REFUSED: "The provider refuses reportdesk's key or quota",
    NoticeKind.JOB_STUCK: "A job is stuck",
    NoticeKind.ENDPOINT_DISABLED: "A webhook endpoint was disabled",
}


def operators_notify(
    *, kind: str, message: str, dedupe_key: str, workspace: Workspace | None = None,
    job: ReportJob | None = None, link: str = "", subject: str = "",
) -> int:
    """Tell the operators of `workspace` (of every workspace, and the superusers, when None)
    that something needs them. Once per `dedupe_key` and person. Returns how many mails went."""
    if kind not in OPERATOR_SUBJECTS:
        raise ValidationFailed(f"Unknown operator alert {kind!r}.", fields={"kind": "Unknown alert."})
    subject = subject or OPERATOR_SUBJECTS[kind]
    if job is not None and not link:
        link = events.job_page_link(job)
    context = {"headline": subject, "message": message, "job": job, "workspace": workspace,
               "link": link or events.admin_link("admin:index")}
    sent = 0
    for user in selectors.operators_to_alert(workspace.pk if workspace else None):
        notice = mail_send(
            kind=kind, user=user, job=job, workspace_id=workspace.pk if workspace else None, template="operator_alert",
            context=context, subject=subject, dedupe_key=f"{kind}:{dedupe_key}:{user.pk}",
        )
        sent += notice is not None and notice.status == NoticeStatus.SENT
    return sent


def stuck_jobs_check(*, now: dt.datetime | None = None) -> int:
    """Tell operators about jobs due for a check for longer than STUCK_JOB_MINUTES: the
    dispatcher takes a due job within seconds, so nothing is moving them. Once per job and
    due time. Returns how many jobs were reported."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(minutes=settings.STUCK_JOB_MINUTES)
    stuck = ReportJob.objects.filter(status__in=ACTIVE_STATUSES, next_check_at__lt=cutoff).select_related("workspace")
    reported = 0
    for job in stuck.order_by("next_check_at")[:100]:
        minutes = int((now - job.next_check_at).total_seconds() // 60)
        operators_notify(
            kind=NoticeKind.JOB_STUCK, workspace=job.workspace, job=job, subject=f"Job {job.public_id} is stuck",
            message=f"The job ({job.get_status_display().lower()}) has been due for a check for {minutes} minutes and no "
            "worker has moved it. Is `manage.py qcluster` running? The job page says what it is waiting for.",
            dedupe_key=f"{job.pk}:{int(job.next_check_at.timestamp())}",
        )
        reported += 1
    return reported


# --- The review digest ---------------------------------------------------------------------


def digest_send(*, now: dt.datetime | None = None) -> int:
    """Once a day, each reviewer who chose the digest gets the list of drafts waiting for
    review in their workspaces (nothing when none waits). Returns how many mails went."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    sent = 0
    for user in selectors.digest_readers():
        drafts = selectors.drafts_waiting_for(user)
        if not drafts:
            continue
        items = [{"job": job, "link": events.review_page_link(job), "waiting": timesince(job.finished_at or job.created_at, now, depth=1)} for job in drafts]
        notice = mail_send(
            kind=NoticeKind.DIGEST, user=user, template="digest", context={"items": items, "day": today},
            subject=f"{len(drafts)} draft{'s' if len(drafts) != 1 else ''} waiting for review", dedupe_key=f"digest:{user.pk}:{today}",
        )
        sent += notice is not None and notice.status == NoticeStatus.SENT
    return sent


# --- People's choices ----------------------------------------------------------------------


def preference_set(*, user, draft_ready: str, report_updates: bool, operator_alerts: bool) -> NotificationPreference:
    if draft_ready not in DraftReady.values:
        raise ValidationFailed("Choose how to hear of drafts.", fields={"draft_ready": f"One of {', '.join(DraftReady.values)}."})
    preference, _ = NotificationPreference.objects.update_or_create(
        user=user, defaults={"draft_ready": draft_ready, "report_updates": report_updates, "operator_alerts": operator_alerts},
    )
    return preference


# --- Webhook endpoints ---------------------------------------------------------------------


def _may_manage(actor, workspace_id: int) -> None:
    ids = operated_workspace_ids(actor)
    if ids is not None and workspace_id not in ids:
        raise PermissionDenied("Webhook endpoints of a workspace are managed by its operators.")


def url_clean(url: str) -> str:
    """An endpoint's or chat channel's URL, refused (ValidationFailed) where the SSRF guard of
    URL sources would refuse it; no network access."""
    url = (url or "").strip()
    if not url:
        raise ValidationFailed("Give the endpoint's URL.", fields={"url": "This field may not be blank."})
    if len(url) > 2000:
        raise ValidationFailed("Keep the URL under 2000 characters.", fields={"url": "Too long."})
    try:
        check_url(url, allowed_hosts=settings.SOURCE_ALLOWED_INTERNAL_HOSTS)
    except SourceFetchError as exc:
        raise ValidationFailed(exc.message, fields={"url": exc.message}) from exc
    return url


def _clean_events(values) -> list[str]:
    if not isinstance(values, list) or not values:
        raise ValidationFailed("Choose the events to send: [\"*\"] or event types.", fields={"events": "Give at least one event type."})
    allowed = {ALL_EVENTS, *EventType.values}
    unknown = [v for v in values if v not in allowed]
    if unknown:
        message = f"Unknown event type {unknown[0]!r}; the types are {', '.join(EventType.values)} (or \"*\")."
        raise ValidationFailed(message, fields={"events": message})
    return [ALL_EVENTS] if ALL_EVENTS in values else sorted(set(values), key=list(EventType.values).index)


def endpoint_create(*, workspace: Workspace, actor, url: str, events: list[str], description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint. Returns it and its signing secret: the only time the secret is
    handed out."""
    _may_manage(actor, workspace.pk)
    secret = signing.secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace, url=url_clean(url), events=_clean_events(events), description=(description or "").strip()[:200],
            secret=secret, created_by=actor,
        )
        _endpoint_logged(endpoint, actor=actor, flag=ADDITION, message=f"Registered, sending {', '.join(endpoint.events)} to {_host(endpoint.url)}.")
    return endpoint, secret


def endpoint_update(
    *, endpoint: WebhookEndpoint, actor, url: str | None = None, events: list[str] | None = None,
    description: str | None = None, is_active: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling a disabled one clears its failure count; its pending
    deliveries resume at the next sweep."""
    _may_manage(actor, endpoint.workspace_id)
    changed = []
    if url is not None and (url := url_clean(url)) != endpoint.url:
        changed.append(f"URL {_host(endpoint.url)} → {_host(url)}")
        endpoint.url = url
    if events is not None and (events := _clean_events(events)) != endpoint.events:
        changed.append(f"events {', '.join(events)}")
        endpoint.events = events
    if description is not None and description.strip()[:200] != endpoint.description:
        changed.append("description")
        endpoint.description = description.strip()[:200]
    if is_active is not None and is_active != endpoint.is_active:
        changed.append("enabled" if is_active else "disabled")
        endpoint.is_active = is_active
        if is_active:
            endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
        else:
            endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), "Disabled by an operator."
    with transaction.atomic():
        endpoint.save()
        if changed:
            _endpoint_logged(endpoint, actor=actor, flag=CHANGE, message=f"Changed: {'; '.join(changed)}.")
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint, actor) -> None:
    _may_manage(actor, endpoint.workspace_id)
    with transaction.atomic():
        _endpoint_logged(endpoint, actor=actor, flag=DELETION, message=f"Deleted (it sent to {_host(endpoint.url)}).")
        endpoint.delete()


def _host(url: str) -> str:
    """A receiver's host: its URL may be its credential."""
    return url_host(url) or "?"


def _endpoint_logged(endpoint: WebhookEndpoint, *, actor, flag: int, message: str) -> None:
    """Every change of an endpoint is on the record, in the endpoint's admin History, by
    whichever way it was made (the admin's own logging is off for endpoints). The record
    names the receiver's host, not its URL: a URL may be the receiver's credential."""
    LogEntry.objects.create(
        user_id=actor.pk, content_type=ContentType.objects.get_for_model(WebhookEndpoint), object_id=str(endpoint.pk),
        object_repr=f"Endpoint {endpoint.pk} ({_host(endpoint.url)})"[:200], action_flag=flag, change_message=message,
    )


def endpoint_disable(*, endpoint_id: int, reason: str) -> bool:
    """Take a failing endpoint out of service and tell its workspace's operators (once)."""
    now = timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:500], updated_at=now
    )
    if changed:
        endpoint = WebhookEndpoint.objects.select_related("workspace").get(pk=endpoint_id)
        link = events.admin_link("admin:notifications_webhookendpoint_change", endpoint.pk)
        transaction.on_commit(partial(
            operators_notify, kind=NoticeKind.ENDPOINT_DISABLED, workspace=endpoint.workspace, link=link,
            message=f"reportdesk stopped sending to {_host(endpoint.url)} (endpoint {endpoint.pk}): {reason} Deliveries wait until an operator enables "
            "the endpoint again; failed ones can be redelivered from the delivery log.",
            dedupe_key=f"{endpoint.pk}:{int(now.timestamp())}",
        ))
    return bool(changed)


# --- Webhook deliveries --------------------------------------------------------------------


def webhooks_fan_out(*, event: JobEvent, types: list[str]) -> list[EndpointDelivery]:
    """One delivery per (active endpoint that wants it, event type); each is sent by its own
    task after commit. Running twice for the same event adds nothing."""
    job = event.job
    created = []
    now = timezone.now()
    for endpoint in WebhookEndpoint.objects.filter(workspace_id=job.workspace_id, is_active=True):
        for event_type in types:
            if not endpoint.wants(event_type):
                continue
            body = json.dumps(events.payload(event=event, event_type=event_type), separators=(",", ":"))
            try:
                with transaction.atomic():
                    created.append(EndpointDelivery.objects.create(
                        endpoint=endpoint, event=event, job=job, event_type=event_type,
                        msg_id=f"msg_{uuid.uuid4().hex}", payload=body, next_attempt_at=now,
                    ))
            except IntegrityError:
                continue  # this event already went to this endpoint
    for delivery in created:
        transaction.on_commit(partial(enqueue_delivery, delivery.pk))
    return created


def delivery_attempt(*, delivery_id: int, trigger: str = "initial") -> DeliveryAttempt | None:
    """Try one delivery now, if it is still pending, due and its endpoint active. The claim
    (a conditional UPDATE pushing `next_attempt_at` past the try) keeps two workers from
    sending it at once; a worker that dies mid-try leaves it due again after the lease."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    claimed = EndpointDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
    ).update(next_attempt_at=lease, claimed_until=lease)
    if not claimed:
        return None
    delivery = EndpointDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    headers = signing.signed_headers(secret=endpoint.secret, msg_id=delivery.msg_id, timestamp=int(time.time()), body=delivery.payload)
    started = time.monotonic()
    status_code, excerpt, error = None, "", ""
    try:
        result = post_url(
            endpoint.url, body=delivery.payload.encode(), headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allowed_hosts=settings.SOURCE_ALLOWED_INTERNAL_HOSTS,
        )
        status_code, excerpt = result.status_code, result.body
        if not 200 <= status_code < 300:
            error = f"The endpoint answered HTTP {status_code}."
    except SourceFetchError as exc:
        error = exc.message
    return _attempt_record(
        delivery_id=delivery_id, trigger=trigger, at=now, duration_ms=int((time.monotonic() - started) * 1000),
        status_code=status_code, error=error, excerpt=excerpt,
    )


def _attempt_record(*, delivery_id: int, trigger: str, at, duration_ms: int, status_code, error: str, excerpt: str) -> DeliveryAttempt:
    now = timezone.now()
    with transaction.atomic():
        delivery = EndpointDelivery.objects.select_for_update().get(pk=delivery_id)
        delivery.attempts += 1
        delivery.round_tries += 1
        attempt = DeliveryAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, trigger=trigger, at=at, duration_ms=duration_ms,
            status_code=status_code, error=error[:2000], response_excerpt=excerpt,
        )
        delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = at, status_code, error[:2000]
        delivery.claimed_until = None
        if not error:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, now, None
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=0)
        else:
            schedule = settings.WEBHOOK_RETRY_SCHEDULE
            if delivery.round_tries <= len(schedule):
                delivery.next_attempt_at = now + dt.timedelta(seconds=schedule[delivery.round_tries - 1])
            else:
                delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
            failures = WebhookEndpoint.objects.values_list("consecutive_failures", flat=True).get(pk=delivery.endpoint_id)
            if failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES:
                endpoint_disable(
                    endpoint_id=delivery.endpoint_id,
                    reason=f"{failures} delivery attempts in a row failed (the last: {error})",
                )
        delivery.save()
    return attempt


def delivery_redeliver(*, delivery: EndpointDelivery, actor) -> EndpointDelivery:
    """Send a delivery again now, with the same `webhook-id` and body (a new round of retries)."""
    _may_manage(actor, delivery.endpoint.workspace_id)
    with transaction.atomic():
        delivery = EndpointDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if not delivery.endpoint.is_active:
            raise InvalidTransition("The endpoint is disabled: enable it first, then redeliver.")
        if delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0:
            raise InvalidTransition("This delivery has not been tried yet; it goes out shortly.")
        if delivery.claimed_until is not None and delivery.claimed_until > timezone.now():
            # Due now, a second worker would send it beside the try in flight.
            raise InvalidTransition("A try of this delivery is under way; redeliver once it has ended.")
        delivery.status, delivery.round_tries, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, timezone.now()
        delivery.save(update_fields=["status", "round_tries", "next_attempt_at"])
        transaction.on_commit(partial(enqueue_delivery, delivery.pk, "redeliver"))
    return delivery


def deliveries_enqueue_due(*, limit: int = 200) -> int:
    """Hand every due retry (and any delivery whose task was lost) to the queue."""
    due = EndpointDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now(), endpoint__is_active=True
    ).order_by("next_attempt_at")
    ids = list(due.values_list("pk", flat=True)[:limit])
    for delivery_id in ids:
        enqueue_delivery(delivery_id, "retry")
    return len(ids)
