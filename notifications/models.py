"""What reportdesk tells people and systems, and what it has told them.

People choose what they receive (NotificationPreference); a workspace may post to a chat
channel (ChatChannel) and to webhook endpoints (WebhookEndpoint). Every webhook message is an
EndpointDelivery (its `msg_id` is the `webhook-id` of every try) with one DeliveryAttempt per
try; every mail and chat message is a Notice. The notifications app reads jobs; jobs never
reads it (it reaches this app by enqueueing `notifications.tasks.job_event_notify`).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    JOB_CREATED = "job.created", "A job was submitted"
    JOB_STATUS_CHANGED = "job.status_changed", "A job changed status"
    JOB_NEEDS_REVIEW = "job.needs_review", "A draft is ready for review"
    JOB_COMPLETED = "job.completed", "A report was completed (approved, or needed no review)"
    JOB_REJECTED = "job.rejected", "A draft was rejected"
    JOB_FAILED = "job.failed", "A job failed"
    JOB_CANCELED = "job.canceled", "A job was canceled"
    JOB_EXPIRED = "job.expired", "A job expired"


ALL_EVENTS = "*"


class DraftReady(models.TextChoices):
    IMMEDIATE = "immediate", "A mail for each draft"
    DIGEST = "digest", "One daily digest"
    OFF = "off", "Nothing"


class NotificationPreference(models.Model):
    """What one person wants to hear about; no row means the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference")
    draft_ready = models.CharField(
        "drafts waiting for my review", max_length=16, choices=DraftReady.choices, default=DraftReady.IMMEDIATE,
        help_text="As a reviewer: when a draft is ready in one of your workspaces.",
    )
    report_updates = models.BooleanField(
        "my reports", default=True,
        help_text="As a requester: when your report is approved, rejected, sent back for revision, failed or expired.",
    )
    operator_alerts = models.BooleanField(
        "operator alerts", default=True,
        help_text="As an operator: the provider refuses the key or quota, a job is stuck, a webhook endpoint was disabled.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Each person sees only their own row, so the admin names the page for them.
        verbose_name = "my notifications"
        verbose_name_plural = "my notifications"
        constraints = [
            models.CheckConstraint(condition=Q(draft_ready__in=DraftReady.values), name="preference_draft_ready_valid"),
        ]

    def __str__(self):
        return f"Notifications of {self.user}"


class ChatChannel(models.Model):
    """A Slack-compatible incoming webhook of a workspace: "draft ready" and "failed" messages."""

    workspace = models.OneToOneField("reportdesk.Workspace", on_delete=models.CASCADE, related_name="chat_channel")
    url = models.CharField("incoming webhook URL", max_length=2000)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Chat of {self.workspace}"


class WebhookEndpoint(models.Model):
    """Where a workspace's integrations want job events POSTed, signed per Standard Webhooks."""

    workspace = models.ForeignKey("reportdesk.Workspace", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Event types (EventType values), or ["*"] for all of them.
    events = models.JSONField(default=list)
    # "whsec_" + base64 of the signing key. Shown to its creator once; kept to sign with.
    secret = models.CharField(max_length=100, editable=False)
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    # Failed attempts since the last success; at WEBHOOK_DISABLE_AFTER_FAILURES the endpoint is disabled.
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "created_at", "id"]

    def __str__(self):
        return self.url

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class EndpointDelivery(models.Model):
    """One webhook message to one endpoint. The body and `msg_id` never change, so every try
    (retries, redeliveries) carries the same `webhook-id`; backoff state lives here."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("jobs.JobEvent", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey("jobs.ReportJob", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    msg_id = models.CharField(max_length=40, unique=True)
    payload = models.TextField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Tries in the current round: the index into WEBHOOK_RETRY_SCHEDULE (a redelivery starts a new round).
    round_tries = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Until when a worker's try holds the delivery (its claim): a redelivery waits for it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "endpoint deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event", "event_type"], condition=Q(event__isnull=False), name="delivery_unique_per_event"
            ),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_recent_idx"),
            models.Index(fields=["job", "created_at"], name="delivery_job_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint_id} ({self.msg_id})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery: when, what came back, how long it took."""

    delivery = models.ForeignKey(EndpointDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16)  # initial, retry, redeliver
    at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_per_delivery")]

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    CHAT = "chat", "Chat"


class NoticeKind(models.TextChoices):
    DRAFT_READY = "draft_ready", "Draft ready for review"
    REPORT_UPDATE = "report_update", "Report update for its requester"
    DIGEST = "digest", "Daily review digest"
    PROVIDER_REFUSED = "provider_refused", "Provider refuses the key or quota"
    JOB_STUCK = "job_stuck", "Job stuck"
    ENDPOINT_DISABLED = "endpoint_disabled", "Webhook endpoint disabled"


OPERATOR_KINDS = (NoticeKind.PROVIDER_REFUSED, NoticeKind.JOB_STUCK, NoticeKind.ENDPOINT_DISABLED)


class NoticeStatus(models.TextChoices):
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notice(models.Model):
    """One mail or chat message sent (or tried). `dedupe_key` makes each one happen once
    however often its task runs."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=24, choices=NoticeKind.choices)
    workspace = models.ForeignKey("reportdesk.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey("jobs.ReportJob", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=300)
    status = models.CharField(max_length=8, choices=NoticeStatus.choices, default=NoticeStatus.SENDING)
    error = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["job", "created_at"], name="notice_job_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="notice_channel_valid"),
            models.CheckConstraint(condition=Q(kind__in=NoticeKind.values), name="notice_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=NoticeStatus.values), name="notice_status_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient}"


class HandledEvent(models.Model):
    """The receipt of a job event whose notifications were all made. A job event is handed to
    this app by a task enqueued after its commit; a broker that was down, or a task lost with
    the broker's memory, leaves a recent event without a receipt, and the minute sweep
    (`services.events_missed_enqueue`) hands it out again. Receipts older than the sweep's
    horizon are pruned."""

    event = models.OneToOneField("jobs.JobEvent", primary_key=True, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self):
        return f"event {self.event_id} handled"
