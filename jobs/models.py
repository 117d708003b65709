"""The job record and everything that hangs off it.

ReportJob is the product's handle on one requested report. Each run of it is a JobAttempt
(initial, retry, revision); each provider response is a ProviderCall; each stored output is
an Artifact; each state change is a JobEvent. Status fields are only ever written by
jobs.services, inside the transaction that writes the matching event.
"""

import copy
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

# The model name of drafts the built-in local provider writes (by extraction, without a
# language model): how the rest of reportdesk knows a draft was written offline.
LOCAL_MODEL = "local-extractive"
from sources.urls import domains_normalise

from .pricing import model_prices
from .template_rules import EFFORT_CHOICES, reasoning_effort_problem, strict_schema_problems

# Crockford's base32 without I, L, O, U: easy to read out over the phone.
_PUBLIC_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_public_id() -> str:
    return "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(10))


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PREPARING = "preparing", "Preparing sources"
    RUNNING = "running", "Generating report"
    NEEDS_REVIEW = "needs_review", "Needs review"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.PREPARING, JobStatus.RUNNING)
TERMINAL_STATUSES = (
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
    JobStatus.EXPIRED,
    JobStatus.REJECTED,
)


class ReviewState(models.TextChoices):
    NOT_REQUIRED = "not_required", "Not required"
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVISION_REQUESTED = "revision_requested", "Revision requested"


class FailureClass(models.TextChoices):
    TIMEOUT = "timeout", "Timeout"
    PROVIDER_ERROR = "provider_error", "Provider error"
    SOURCE_ERROR = "source_error", "Source error"
    POLICY_BLOCK = "policy_block", "Policy block"
    VALIDATION_ERROR = "validation_error", "Validation error"
    UNKNOWN = "unknown", "Unknown"


RETRYABLE_FAILURES = (FailureClass.TIMEOUT, FailureClass.PROVIDER_ERROR, FailureClass.SOURCE_ERROR)


class ReportType(models.TextChoices):
    MARKET_SCAN = "market_scan", "Market scan"
    VENDOR_COMPARISON = "vendor_comparison", "Vendor comparison"
    TECHNICAL_BRIEF = "technical_brief", "Technical brief"
    DUE_DILIGENCE = "due_diligence", "Due diligence"
    CUSTOMER_MEMO = "customer_memo", "Customer memo"


class TemplateMode(models.TextChoices):
    SINGLE = "single", "Single response"
    MULTI_STEP = "multi_step", "Multi-step research"


# What a template says about how a report is written and judged, frozen on each attempt when
# the attempt begins (JobAttempt.template_settings, at queued → preparing): an edit of the
# template (another model, multi-step on or off, new instructions, review on or off) applies
# to the jobs still queued and to the attempts begun after it, never to one under way, nor to
# the checks of a draft already written. The limits an operator tightens to stop spending (the
# cost cap, the runtime limit) are not frozen: they apply at once, to every job of the template.
# A field added here later is frozen from then on; attempts begun before read it live.
TEMPLATE_RUN_FIELDS = (
    "report_type", "instructions", "required_sections", "output_schema", "model", "reasoning_effort",
    "web_search", "web_search_domains", "review_required", "local_drafts_complete", "freshness_days",
    "mode", "follow_up_round", "max_output_tokens", "max_tool_calls",
)


class ReportTemplate(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    report_type = models.CharField(max_length=32, choices=ReportType.choices)
    description = models.TextField(blank=True)
    instructions = models.TextField()
    required_sections = models.JSONField(default=list, blank=True)
    # Empty means the standard structured report (jobs.report_schema.REPORT_SCHEMA).
    output_schema = models.JSONField(default=dict, blank=True)
    model = models.CharField(max_length=100, default="gpt-5.2")
    # Sent as `reasoning.effort`; empty leaves the model's own default (none for gpt-5.1 and
    # later: no reasoning at all). Checked against what the model offers on save.
    reasoning_effort = models.CharField(max_length=8, blank=True, choices=EFFORT_CHOICES)
    web_search = models.BooleanField(default=False)
    web_search_domains = models.JSONField(default=list, blank=True)
    review_required = models.BooleanField(default=True)
    # An offline draft (the local engine's) goes to review even when the template needs none,
    # unless the operator lets it complete on its own here.
    local_drafts_complete = models.BooleanField(
        "Local drafts may complete without review",
        default=False,
        help_text="Only matters when review is not required: let drafts written offline by the "
        "local engine complete without a reviewer too.",
    )
    max_runtime_minutes = models.PositiveIntegerField(default=30)
    useful_window_hours = models.PositiveIntegerField(default=72)
    # Sources older than this many days are flagged in review; 0 turns the check off.
    freshness_days = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=16, choices=TemplateMode.choices, default=TemplateMode.SINGLE)
    # Multi-step only: after the research, ask for the gaps its notes leave, and research those
    # too (at most MAX_RESEARCH_QUESTIONS more) before the synthesis.
    follow_up_round = models.BooleanField(default=False)
    # Budgets: what one report may cost (all attempts and steps), and the caps sent with
    # every request. Empty means no limit.
    cost_cap_usd = models.DecimalField(
        "cost cap per report (USD)", max_digits=10, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(16)],
        help_text="Sent with every request; the API needs at least 16. Reasoning tokens count towards it.",
    )
    max_tool_calls = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Built-in tool calls (web searches) one response may make; sent with every request.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(report_type__in=ReportType.values), name="template_report_type_valid"
            ),
            models.CheckConstraint(condition=Q(mode__in=TemplateMode.values), name="template_mode_valid"),
        ]

    def __str__(self):
        return self.name

    # Set on the copy JobAttempt.run_template makes: saving it would undo an operator's edit.
    frozen_for_attempt: int | None = None

    def save(self, *args, **kwargs):
        if self.frozen_for_attempt is not None:
            raise TypeError("This is the template as an attempt runs it, a read-only copy: save the template itself.")
        super().save(*args, **kwargs)

    def run_settings(self) -> dict:
        """The settings an attempt freezes (TEMPLATE_RUN_FIELDS), as JSON stores them."""
        return {name: self._meta.get_field(name).value_from_object(self) for name in TEMPLATE_RUN_FIELDS}

    def clean(self):
        errors: dict[str, str] = {}
        if not isinstance(self.required_sections, list) or not all(
            isinstance(s, str) and s.strip() for s in self.required_sections
        ):
            errors["required_sections"] = "A list of section headings."
        domains, domain_problems = domains_normalise(self.web_search_domains or [])
        if domain_problems:
            errors["web_search_domains"] = " ".join(domain_problems[:5])
        else:
            # Bare hosts, as the web search tool filters on them and the checks compare them.
            self.web_search_domains = domains
        effort_problem = reasoning_effort_problem(model=self.model, effort=self.reasoning_effort)
        if effort_problem:
            errors["reasoning_effort"] = effort_problem
        if self.output_schema:
            schema_problems = strict_schema_problems(self.output_schema)
            if schema_problems:
                errors["output_schema"] = "Strict structured output would refuse this schema: " + " ".join(schema_problems[:5])
        if self.cost_cap_usd is not None and model_prices(self.model) is None:
            errors["cost_cap_usd"] = f"{self.model} has no price in the price table, so a cost cap cannot be held: add its price first."
        if errors:
            raise ValidationError(errors)


class ReportJob(models.Model):
    public_id = models.CharField(max_length=16, unique=True, default=new_public_id, editable=False)
    # Indexed by job_workspace_recent_idx, which starts with it.
    workspace = models.ForeignKey("reportdesk.Workspace", on_delete=models.PROTECT, related_name="jobs", db_index=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="report_jobs"
    )
    template = models.ForeignKey(ReportTemplate, on_delete=models.PROTECT, related_name="jobs")
    topic = models.CharField(max_length=500)
    audience = models.CharField(max_length=300, blank=True)
    input_summary = models.CharField(max_length=1000, blank=True)
    source_manifest = models.ForeignKey(
        "sources.SourceManifest", on_delete=models.PROTECT, related_name="jobs"
    )
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    failure_class = models.CharField(max_length=20, choices=FailureClass.choices, blank=True)
    failure_message = models.TextField(blank=True)
    # Whether a retry of the same input may succeed: the failure class decides, except that a
    # source error is retryable only when every source failed for a passing reason.
    failure_retryable = models.BooleanField(default=False)
    review_state = models.CharField(
        max_length=20, choices=ReviewState.choices, default=ReviewState.NOT_REQUIRED
    )
    current_attempt = models.ForeignKey(
        "JobAttempt", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=0)
    provider_response_id = models.CharField(max_length=200, blank=True)

    # Worker bookkeeping: when to look at the job next, and who is looking now.
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    # Set when the provider call for the current attempt begins; the request can no
    # longer be edited after that.
    request_locked_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)

    # Cost summary over every provider call of every attempt.
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    runtime_seconds = models.FloatField(default=0)
    # Null when a call's model has no price: an unknown cost is shown as unknown, never $0.
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0, null=True, blank=True)
    cost_warning = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("submit_reportjob", "Can submit report jobs"),
            ("cancel_reportjob", "Can cancel report jobs"),
            ("retry_reportjob", "Can retry report jobs"),
            ("expire_reportjob", "Can expire report jobs"),
            ("archive_reportjob", "Can archive and unarchive report jobs"),
            ("review_reportjob", "Can review report drafts"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(
                condition=Q(review_state__in=ReviewState.values), name="job_review_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(failure_class__in=[*FailureClass.values, ""]),
                name="job_failure_class_valid",
            ),
            models.CheckConstraint(
                condition=Q(failure_class="") | Q(status=JobStatus.FAILED),
                name="job_failure_class_only_when_failed",
            ),
            models.CheckConstraint(
                condition=Q(archived_at__isnull=True) | Q(status__in=TERMINAL_STATUSES),
                name="job_archived_only_when_terminal",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_check_at"], name="job_due_idx"),
            models.Index(fields=["workspace", "-created_at"], name="job_workspace_recent_idx"),
            models.Index(fields=["status", "review_state"], name="job_status_review_idx"),
            models.Index(fields=["created_at"], name="job_created_idx"),
            models.Index(fields=["provider_response_id"], name="job_response_id_idx"),
            # The operator console's list: newest first, archived jobs hidden by default, and
            # narrowed by status or failure class, without scanning the whole table.
            models.Index(
                fields=["-created_at", "-id"], condition=Q(archived_at__isnull=True), name="job_unarchived_recent_idx"
            ),
            models.Index(fields=["status", "-created_at", "-id"], name="job_status_recent_idx"),
            models.Index(
                fields=["failure_class", "-created_at", "-id"], condition=~Q(failure_class=""), name="job_failure_recent_idx"
            ),
        ]

    def __str__(self):
        return f"{self.public_id} · {self.topic[:60]}"

    @property
    def run_template(self) -> ReportTemplate:
        """The template as the current attempt runs it (JobAttempt.run_template): what the
        worker, the draft's store and the job page read, rather than the template as edited since."""
        if self.current_attempt_id is None:
            return self.template
        return self.current_attempt.run_template(self.template)

    @property
    def written_offline(self) -> bool:
        """Was the draft written by the built-in local engine, by extraction, without a model?"""
        return self.model == LOCAL_MODEL

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def retryable(self) -> bool:
        return self.status == JobStatus.FAILED and self.failure_retryable


class AttemptReason(models.TextChoices):
    INITIAL = "initial", "Initial"
    RETRY = "retry", "Retry"
    REVISION = "revision", "Revision"


class AttemptStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class JobAttempt(models.Model):
    # Indexed by attempt_unique_number, which starts with it.
    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    reason = models.CharField(max_length=16, choices=AttemptReason.choices)
    # A reviewer's or requester's notes for a revision.
    instructions = models.TextField(blank=True)
    manifest = models.ForeignKey("sources.SourceManifest", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.PENDING
    )
    # The report version this attempt produced (1, 2, …); null until a draft is stored.
    version = models.PositiveIntegerField(null=True, blank=True)
    # Automatic retries of transient provider errors within this attempt.
    provider_retries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The template's run settings when the attempt began (ReportTemplate.run_settings); empty
    # until then, and for attempts begun before settings were frozen: both follow the template.
    template_settings = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="attempt_unique_number"),
            models.UniqueConstraint(
                fields=["job", "version"], condition=Q(version__isnull=False), name="attempt_unique_version"
            ),
            models.CheckConstraint(condition=Q(reason__in=AttemptReason.values), name="attempt_reason_valid"),
            models.CheckConstraint(condition=Q(status__in=AttemptStatus.values), name="attempt_status_valid"),
        ]

    def __str__(self):
        return f"{self.job.public_id} attempt {self.number}"

    def run_template(self, template: ReportTemplate) -> ReportTemplate:
        """`template` (the job's) as it stood when this attempt began: a read-only copy with
        the frozen settings; its name, slug and whether it is retired stay current."""
        if not self.template_settings:
            return template
        frozen = copy.copy(template)
        frozen.frozen_for_attempt = self.pk
        for name, value in self.template_settings.items():
            if name in TEMPLATE_RUN_FIELDS:
                # A copy, so that nothing done to the template's lists reaches the attempt's.
                setattr(frozen, name, ReportTemplate._meta.get_field(name).to_python(copy.deepcopy(value)))
        return frozen

    def template_edits(self, template: ReportTemplate) -> list[str]:
        """The labels of the run settings `template` has changed since this attempt froze them."""
        frozen = self.run_template(template)
        return [
            str(ReportTemplate._meta.get_field(name).verbose_name)
            for name in TEMPLATE_RUN_FIELDS
            if name in self.template_settings and getattr(frozen, name) != getattr(template, name)
        ]


class CallStatus:
    """ProviderCall.status: the provider's own values as it spells them, and ours beside them."""

    # The provider's (OpenAI's Response.status).
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"
    # Ours.
    PENDING = ""  # recorded before the create; the provider has not answered yet
    # The create got no answer (a timeout, a dropped connection, a worker that died): the
    # provider may have started a response. No new create until the reconcile window is over.
    UNCONFIRMED = "unconfirmed"
    LOST = "lost"  # the window passed without a sign of a response: a new create went ahead
    ERROR = "error"  # the create call itself failed
    CANCEL_FAILED = "cancel_failed"  # the provider refused our cancel for good (e.g. unknown id)

    # A call whose response may still be running (and billing) at the provider.
    LIVE = (PENDING, QUEUED, IN_PROGRESS)
    # A step with a call in one of these is not started again: its response may be running,
    # or its create may have started one (reconciled before anything is created again).
    IN_FLIGHT = (*LIVE, UNCONFIRMED)
    # A create that may have started a response nobody has seen yet.
    UNANSWERED = (PENDING, UNCONFIRMED, LOST)


class ProviderCallQuerySet(models.QuerySet):
    def live(self):
        """Responses that exist at the provider and may still be running: the one definition
        used by cancels, the orphan sweep and the console."""
        return self.filter(status__in=CallStatus.LIVE, provider_response_id__isnull=False)


class ProviderCall(models.Model):
    """One provider response. Written before the create call, so a crash leaves a trace."""

    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="provider_calls")
    attempt = models.ForeignKey(JobAttempt, on_delete=models.CASCADE, related_name="provider_calls")
    step = models.CharField(max_length=32, default="report")
    provider = models.CharField(max_length=16)
    model = models.CharField(max_length=100)
    provider_response_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    previous_response_id = models.CharField(max_length=200, blank=True)
    # CallStatus: the provider's own status, as it spells it, or one of ours ("" until the
    # create call has answered, "unconfirmed" / "lost" when it never answered).
    status = models.CharField(max_length=20, blank=True)
    # A response the job does not use: a duplicate that turned up for a create given up as
    # lost, or the one of two for the same step that was not kept. Canceled at the provider
    # while live; its usage still counts in the job's cost.
    orphan = models.BooleanField(default=False)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    polls = models.PositiveIntegerField(default=0)
    # A worker follows the response's event stream through its first minute (jobs.worker.
    # stream_watch): the checks of that minute are only a safety net.
    watched = models.BooleanField(default=False)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # When the provider last said the response ended (its webhook, or its stream): the job's
    # next check looks at this response first (jobs.worker.research.call_to_follow).
    notified_at = models.DateTimeField(null=True, blank=True)
    # What went into the request: which sources, how much of each, and why.
    request_summary = models.JSONField(default=dict, blank=True)
    # The answer, once terminal: {"text": ..., "function_calls": [{call_id, name, arguments}]}.
    # Multi-step research reads the plan and the function calls from here.
    output = models.JSONField(default=dict, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    web_searches = models.PositiveIntegerField(default=0)
    # Null when the model has no price (cost_warning says so), never a silent $0.
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0, null=True, blank=True)
    # The least this call can cost, estimated at its create from what it sends and what its
    # chain carries (jobs.budgets.call_estimate): held against the budgets while it runs,
    # since its cost is known only once it ends. Null: the model has no price.
    estimated_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    cost_warning = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the provider's stored copy was deleted (jobs.retention); it can no longer be chained to.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ProviderCallQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.provider_response_id or f"call #{self.pk} (no response id)"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    WORKER = "worker", "Worker"
    WEBHOOK = "webhook", "Webhook"
    SCHEDULER = "scheduler", "Scheduler"


class EventAction(models.TextChoices):
    """Every JobEvent.action. Writers go through jobs.events; readers (metrics, indexes, the
    timeline) name the same members, so a rename cannot break one of them silently."""

    SUBMITTED = "submitted"
    EDITED = "edited"
    PREPARING = "preparing"
    STARTED = "started"
    DRAFT_READY = "draft_ready"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    RETRIED = "retried"
    REVISION_REQUESTED = "revision_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    RERUN = "rerun"
    EXPORTED = "exported"
    CLAIMED = "claimed"
    RELEASED = "released"
    WORKER_ERROR = "worker_error"
    SOURCES_PARTIALLY_FAILED = "sources_partially_failed"
    PROVIDER_CALL_LOST = "provider_call_lost"
    PROVIDER_RETRY_SCHEDULED = "provider_retry_scheduled"
    PROVIDER_NOTIFIED = "provider_notified"
    PROVIDER_CALL_UNCONFIRMED = "provider_call_unconfirmed"
    PROVIDER_CALL_RECONCILED = "provider_call_reconciled"
    PROVIDER_ORPHAN_FOUND = "provider_orphan_found"
    PROVIDER_CHAIN_LOST = "provider_chain_lost"


class JobEvent(models.Model):
    """Append-only audit record. Never edited or deleted through the admin or the API."""

    # Indexed by event_job_at_idx, which starts with it.
    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="events", db_index=False)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The actor's username when the event was written, kept if the user is later removed.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    from_review_state = models.CharField(max_length=20, blank=True)
    to_review_state = models.CharField(max_length=20, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["job", "at"], name="event_job_at_idx"),
            # Metrics read every failure of a window's jobs (retry rate by failure class).
            models.Index(fields=["job", "at"], condition=Q(action=EventAction.FAILED), name="event_failed_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_kind__in=ActorKind.values), name="event_actor_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(actor_kind=ActorKind.USER) | ~Q(actor_name=""),
                name="event_user_actor_named",
            ),
        ]

    def __str__(self):
        return f"{self.job_id} {self.action} by {self.actor_label}"

    @property
    def actor_label(self) -> str:
        return self.actor_name if self.actor_kind == ActorKind.USER else f"system ({self.actor_kind})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValidationError("Job events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Job events are append-only.")


class ArtifactKind(models.TextChoices):
    REPORT_MARKDOWN = "report_md", "Report (Markdown)"
    STRUCTURED_JSON = "report_json", "Structured report (JSON)"
    CITATIONS = "citations", "Citations"
    EVIDENCE = "evidence", "Evidence table"
    SOURCE_NOTES = "source_notes", "Source notes"
    RENDERED_HTML = "report_html", "Rendered HTML (sanitised)"


class Artifact(models.Model):
    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="artifacts")
    attempt = models.ForeignKey(JobAttempt, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attempt", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "kind"], name="artifact_unique_kind"),
            models.CheckConstraint(condition=Q(kind__in=ArtifactKind.values), name="artifact_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.attempt}"


class AttemptWebPage(models.Model):
    """A web page a draft cites, fetched (through the SSRF-safe fetcher) after the draft was
    written and kept as a source item of the attempt, so the checks can look its quote up
    like any other source's. Not part of the manifest: the model never saw it as an S-id."""

    attempt = models.ForeignKey(JobAttempt, on_delete=models.CASCADE, related_name="web_pages")
    url = models.URLField(max_length=2000)  # as the report cites it
    item = models.ForeignKey("sources.SourceItem", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attempt", "id"]
        constraints = [models.UniqueConstraint(fields=["attempt", "url"], name="web_page_unique_url")]

    def __str__(self):
        return self.url


class ProviderBreaker(models.Model):
    """The circuit breaker on provider calls: one row per scope ("installation", or
    "workspace:<id>"). While `opened_at` is set no new provider call is made in the scope —
    queued jobs stay queued, running ones wait — until a probe passes or an operator clears
    it. `backoff_until` is the shared wait after an organisation-wide rate limit. Written by
    jobs.breaker only."""

    INSTALLATION = "installation"

    scope = models.CharField(max_length=64, primary_key=True)
    workspace = models.ForeignKey("reportdesk.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(null=True, blank=True)
    code = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    probes = models.PositiveIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cleared_how = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "provider hold"

    def __str__(self):
        return f"{self.scope}: {'on hold' if self.opened_at else 'calls allowed'}"

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


class IdempotencyKey(models.Model):
    """An API submit's Idempotency-Key, scoped to the caller."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    job = models.ForeignKey(ReportJob, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key")]


class WebhookDelivery(models.Model):
    """A provider webhook we have accepted, deduplicated on its `webhook-id` and on the
    event's own id (the same event may come again under a new delivery id)."""

    webhook_id = models.CharField(max_length=200, unique=True)
    event_id = models.CharField(max_length=200, unique=True, null=True, blank=True)
    event_type = models.CharField(max_length=64)
    response_id = models.CharField(max_length=200, blank=True)
    # The response is none of our known calls': a worker reads its metadata to see whether it
    # answers a create that never answered (jobs.worker.reconcile).
    needs_match = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], condition=Q(needs_match=True), name="webhook_needs_match_idx"),
        ]


class LocalResponse(models.Model):
    """A background response of the built-in local provider (used when no API key is set).

    Lives in the database so the web app and every worker process see the same response.
    """

    id = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=100)
    request = models.JSONField()
    created_at = models.DateTimeField()
    starts_at = models.DateTimeField()
    completes_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Injected fault, for demos and tests: "", "fail", "incomplete", "policy".
    fault = models.CharField(max_length=32, blank=True)
    output_text = models.TextField(blank=True)


class WorkerHeartbeat(models.Model):
    """A lease with a heartbeat for a singleton part of the worker (the dispatcher)."""

    name = models.CharField(max_length=64, primary_key=True)
    # Who holds the lease on this role ("" when released).
    owner = models.CharField(max_length=32, blank=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.seen_at:%H:%M:%S}"
