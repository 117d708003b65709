"""Input and output serializers, kept apart and uniquely named (`…In` parses a request,
`…Out` renders a response), so each appears once in the OpenAPI document.

Input serializers check shape and bounds only (types, lengths, the database's limits, so
bad input is a 400 and never reaches the database as a 500); the rules of the product are
the services' business. Output serializers read what the views' querysets already loaded.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from jobs import policy
from jobs.exports import FORMATS as EXPORT_FORMATS
from jobs.metrics import WINDOW_EARLIEST, WINDOW_LATEST
from jobs.models import ActorKind, FailureClass, JobStatus, ReportJob, ReportTemplate, ReviewState
from reportdesk.selectors import member_workspace
from reviews.models import CHECKLIST, Decision
from sources.models import SourceKind, SourceStatus
from sources.selectors import SourceRow
from sources.services import SourceSpec

from .exceptions import PayloadTooLarge

class StrictCharField(serializers.CharField):
    """A JSON string, and only that: 12 is not the topic "12"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


MAX_SOURCES = 50
_MAX_DB_INT = 2**63 - 1
ACTION_NAMES = [
    policy.CANCEL, policy.EDIT, policy.VIEW_SOURCES, policy.APPROVE, policy.REJECT, policy.REQUEST_REVISION,
    policy.OPEN, policy.EXPORT, policy.ARCHIVE, policy.UNARCHIVE, policy.RETRY, policy.REVISE, policy.RERUN,
    policy.EXPIRE,
]  # fmt: skip


# --- Errors ------------------------------------------------------------------------------


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_authenticated, permission_denied, "
                                 "not_found, invalid_transition, not_retryable, claim_conflict, too_large, throttled, …")
    message = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="Per-field messages (nested for list items, e.g. sources → index)."
    )


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


# --- Templates ---------------------------------------------------------------------------


class TemplateOut(serializers.ModelSerializer):
    class Meta:
        model = ReportTemplate
        fields = ["slug", "name", "report_type", "review_required", "mode", "description"]


# --- Sources -----------------------------------------------------------------------------


class SourceOut(serializers.Serializer):
    id = serializers.IntegerField()
    workspace = serializers.CharField(source="workspace.slug")
    kind = serializers.ChoiceField(choices=SourceKind.choices)
    title = serializers.CharField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=SourceStatus.choices)
    error = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    published_at = serializers.DateField(allow_null=True)
    created_at = serializers.DateTimeField()


def _check_text_size(text: str) -> str:
    if len(text.encode()) > settings.SOURCE_MAX_BYTES:
        raise PayloadTooLarge(f"Pasted text is larger than the {settings.SOURCE_MAX_BYTES // 1024} KB limit.")
    return text


class _InWorkspace(serializers.Serializer):
    """A `workspace` slug among the caller's workspaces. Another workspace reads exactly like
    one that does not exist."""

    workspace = serializers.SlugField(max_length=64, help_text="Workspace slug.")

    def validate_workspace(self, slug):
        workspace = member_workspace(self.context["request"].user, slug)
        if workspace is None:
            raise serializers.ValidationError(f"You have no workspace '{slug}'.")
        return workspace


class SourceCreateJsonIn(_InWorkspace):
    """A source from a URL (fetched when a job uses it) or pasted text."""

    url = StrictCharField(required=False, max_length=2000, help_text="An http(s) address, fetched when a job uses it.")
    title = StrictCharField(required=False, allow_blank=True, max_length=300)
    text = StrictCharField(required=False, help_text="Pasted text; up to SOURCE_MAX_BYTES.")

    def validate_text(self, value):
        return _check_text_size(value)

    def validate(self, attrs):
        given = [name for name in ("url", "text", "file") if attrs.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError("Give exactly one of: file (multipart), url, text.")
        return attrs


class SourceCreateUploadIn(SourceCreateJsonIn):
    """A source from an uploaded file (multipart), a URL or pasted text."""

    file = serializers.FileField(required=False, help_text="Text, Markdown, HTML or PDF; up to SOURCE_MAX_BYTES.")


_SOURCE_REF_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": _MAX_DB_INT, "description": "A source id from POST /api/v1/sources/."},
        {
            "type": "object",
            "title": "Inline URL source",
            "properties": {"url": {"type": "string", "minLength": 1, "maxLength": 2000}, "title": {"type": "string", "maxLength": 300}},
            "required": ["url"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "title": "Inline text source",
            "properties": {"title": {"type": "string", "maxLength": 300}, "text": {"type": "string", "minLength": 1}},
            "required": ["text"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "title": "Internal record",
            "description": "A completed report of the same workspace, quoted as a source.",
            "properties": {"record": {"type": "string", "minLength": 1, "maxLength": 16}},
            "required": ["record"],
            "additionalProperties": False,
        },
    ]
}


@extend_schema_field(_SOURCE_REF_SCHEMA)
class SourceRefField(serializers.Field):
    """A source as a request names it: an id, `{"url"}`, `{"title","text"}` or `{"record"}`."""

    default_error_messages = {
        "shape": 'A source is a source id, {{"url": …}}, {{"title": …, "text": …}} or {{"record": "<job id>"}}.',
        "keys": "Unexpected keys: {keys}.",
    }
    _SHAPES = {"url": {"url", "title"}, "text": {"text", "title"}, "record": {"record"}}

    def to_internal_value(self, data) -> SourceSpec:
        if isinstance(data, bool):
            self.fail("shape")
        if isinstance(data, int):
            if not 1 <= data <= _MAX_DB_INT:
                raise serializers.ValidationError("Unknown source id.")
            return SourceSpec(item_id=data)
        if not isinstance(data, dict):
            self.fail("shape")
        kind = next((k for k in ("url", "text", "record") if k in data), None)
        if kind is None:
            self.fail("shape")
        extra = set(data) - self._SHAPES[kind]
        if extra:
            self.fail("keys", keys=", ".join(sorted(map(str, extra))))
        values = {}
        limits = {"url": 2000, "title": 300, "record": 16, "text": None}
        for key in data:
            value = StrictCharField(
                allow_blank=key == "title", max_length=limits[key], trim_whitespace=key != "text"
            ).run_validation(data[key])
            values[key] = value
        if kind == "text":
            _check_text_size(values["text"])
            return SourceSpec(title=values.get("title", ""), text=values["text"])
        if kind == "url":
            return SourceSpec(url=values["url"], title=values.get("title", ""))
        return SourceSpec(record_job_id=values["record"].lower())

    def to_representation(self, value):  # pragma: no cover - input only
        raise NotImplementedError


class _SourceListField(serializers.ListField):
    def __init__(self, **kwargs):
        super().__init__(child=SourceRefField(), max_length=MAX_SOURCES, **kwargs)


# --- Jobs: input -------------------------------------------------------------------------


class JobSubmitIn(_InWorkspace):
    """A report request: what to write about, for whom, from which sources, with which template."""

    template = serializers.SlugField(max_length=64, help_text="Template slug (GET /api/v1/templates/).")
    topic = StrictCharField(max_length=500)
    audience = StrictCharField(required=False, allow_blank=True, max_length=300, default="")
    sources = _SourceListField(required=False, default=list, help_text=f"Up to {MAX_SOURCES} sources, in order: S1, S2, …")
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_template(self, slug):
        template = ReportTemplate.objects.filter(slug=slug, is_active=True).first()
        if template is None:
            raise serializers.ValidationError(f"Unknown template '{slug}'. GET /api/v1/templates/ lists them.")
        return template


class JobEditIn(serializers.Serializer):
    topic = StrictCharField(required=False, max_length=500)
    audience = StrictCharField(required=False, allow_blank=True, max_length=300)
    sources = _SourceListField(required=False, help_text="Replaces the whole source list.")
    deadline = serializers.DateTimeField(required=False)


class JobActionIn(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)


class JobReviseIn(serializers.Serializer):
    instructions = StrictCharField(max_length=20000, help_text="What the new attempt should change.")


class JobRerunIn(serializers.Serializer):
    topic = StrictCharField(required=False, max_length=500)
    audience = StrictCharField(required=False, allow_blank=True, max_length=300)
    sources = _SourceListField(required=False, help_text="Omit to reuse this job's sources (URLs fetched anew).")


@extend_schema_field(
    {
        "type": "object",
        "properties": {key: {"type": "boolean", "description": text} for key, text in CHECKLIST.items()},
        "additionalProperties": False,
    }
)
class _ChecklistField(serializers.DictField):
    """Checked for shape here; which items exist and what approval needs is reviews.services'."""

    def __init__(self, **kwargs):
        super().__init__(child=StrictBooleanField(), **kwargs)


class ReviewDecisionIn(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    comment = StrictCharField(required=False, allow_blank=True, default="", max_length=20000)
    override_reason = StrictCharField(
        required=False, allow_blank=True, default="", max_length=5000,
        help_text="Required to approve a draft whose automatic checks failed.",
    )
    checklist = _ChecklistField(
        required=False, allow_null=True, default=None,
        help_text="The reviewer's checklist: item → confirmed. Approving needs every item confirmed.",
    )
    section_comments = serializers.DictField(
        child=StrictCharField(max_length=5000, allow_blank=True), required=False, default=dict,
        help_text="Comments on single sections, heading → comment; they go to the revision with `comment`.",
    )
    version = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True, default=None,
        help_text="The draft version you read. If a newer one has arrived since, the decision is refused (409).",
    )


class ReportQueryIn(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(EXPORT_FORMATS), default="json", required=False)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)


# --- Jobs: output ------------------------------------------------------------------------


class JobStateOut(serializers.Serializer):
    label = serializers.CharField()
    message = serializers.CharField()
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=ACTION_NAMES),
        help_text="What the caller may do now. edit → PATCH; approve, reject, request_revision → "
        "POST review/; open, export → GET report/; view_sources → the sources field.",
    )


class JobSourceOut(serializers.Serializer):
    """A source as one job uses it (a manifest entry)."""

    id = serializers.IntegerField(source="item.id")
    sid = serializers.CharField(help_text="S1…Sn: how the report cites it.")
    kind = serializers.ChoiceField(source="item.kind", choices=SourceKind.choices)
    title = serializers.CharField(source="item.title")
    url = serializers.CharField(source="item.url")
    status = serializers.ChoiceField(source="item.status", choices=SourceStatus.choices)
    error = serializers.CharField(source="item.error")
    content_type = serializers.CharField(source="item.content_type")
    size = serializers.IntegerField(source="item.size")
    published_at = serializers.DateField(source="item.published_at", allow_null=True)


class JobCostOut(serializers.Serializer):
    model = serializers.CharField()
    input_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    tool_calls = serializers.IntegerField()
    retries = serializers.IntegerField()
    runtime_seconds = serializers.FloatField()
    usd = serializers.DecimalField(
        source="cost_usd", max_digits=12, decimal_places=6, coerce_to_string=True, allow_null=True,
        help_text='A decimal string, e.g. "0.012500"; null when a model has no price (see `warning`), never a silent 0.',
    )
    warning = serializers.CharField(source="cost_warning", help_text="Why the cost is unknown, when it is.")
    cap_usd = serializers.DecimalField(
        source="template.cost_cap_usd", max_digits=10, decimal_places=2, coerce_to_string=True, allow_null=True,
        help_text="The template's cost cap per report (null: no cap); `usd` is what the report has used of it.",
    )


class JobOut(serializers.Serializer):
    id = serializers.CharField(source="public_id", help_text="The job's public id; URLs use it.")
    workspace = serializers.CharField(source="workspace.slug")
    template = serializers.CharField(source="template.slug")
    topic = serializers.CharField()
    audience = serializers.CharField()
    input_summary = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    state = serializers.SerializerMethodField()
    failure_class = serializers.ChoiceField(choices=[("", "None"), *FailureClass.choices])
    failure_message = serializers.CharField()
    retryable = serializers.BooleanField()
    review_state = serializers.ChoiceField(choices=ReviewState.choices)
    version = serializers.IntegerField(help_text="The latest report version; 0 before the first draft.")
    written_offline = serializers.BooleanField(
        help_text="The draft was written by the built-in local engine: sentences selected from the "
        "sources, without a language model."
    )
    provider_response_id = serializers.CharField()
    last_checked_at = serializers.DateTimeField(allow_null=True)
    next_check_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    archived_at = serializers.DateTimeField(allow_null=True)
    requested_by = serializers.CharField(source="requested_by.username")
    rerun_of = serializers.CharField(source="rerun_of.public_id", allow_null=True, default=None)
    sources = JobSourceOut(many=True, source="source_manifest.entries.all")
    cost = JobCostOut(source="*")

    @extend_schema_field(JobStateOut)
    def get_state(self, job: ReportJob) -> dict:
        state = policy.job_state(job, self.context["request"].user)
        return {"label": state.label, "message": state.message, "actions": list(state.actions)}

    def _sources(self, job: ReportJob) -> list[SourceRow]:
        """The job's sources: from the context's `sources` (manifest_sources(), read once for a
        page) when the view gave them, else from the manifest's entries."""
        in_hand = self.context.get("sources")
        if in_hand is not None:
            return in_hand.get(job.source_manifest_id, [])
        return [SourceRow.of(entry) for entry in job.source_manifest.entries.all()]

    def to_representation(self, job: ReportJob) -> dict:
        """The declared fields' output, written out: every list and detail renders this, and
        going field by field through DRF cost more than reading the rows. The fields above
        still define the schema; tests/api/test_serializers.py holds the two equal."""
        state = policy.job_state(job, self.context["request"].user)
        return {
            "id": job.public_id,
            "workspace": job.workspace.slug,
            "template": job.template.slug,
            "topic": job.topic,
            "audience": job.audience,
            "input_summary": job.input_summary,
            "status": str(job.status),
            "state": {"label": str(state.label), "message": str(state.message), "actions": [str(a) for a in state.actions]},
            "failure_class": str(job.failure_class),
            "failure_message": job.failure_message,
            "retryable": bool(job.retryable),
            "review_state": str(job.review_state),
            "version": job.version,
            "written_offline": bool(job.written_offline),
            "provider_response_id": job.provider_response_id,
            "last_checked_at": _datetime_out(job.last_checked_at),
            "next_check_at": _datetime_out(job.next_check_at),
            "created_at": _datetime_out(job.created_at),
            "started_at": _datetime_out(job.started_at),
            "finished_at": _datetime_out(job.finished_at),
            "deadline": _datetime_out(job.deadline),
            "archived_at": _datetime_out(job.archived_at),
            "requested_by": job.requested_by.username,
            "rerun_of": job.rerun_of.public_id if job.rerun_of_id else None,
            "sources": [
                {
                    "id": row.id, "sid": row.sid, "kind": str(row.kind), "title": row.title, "url": row.url,
                    "status": str(row.status), "error": row.error, "content_type": row.content_type, "size": row.size,
                    "published_at": row.published_at.isoformat() if row.published_at else None,
                }
                for row in self._sources(job)
            ],
            "cost": {
                "model": job.model, "input_tokens": job.input_tokens, "cached_tokens": job.cached_tokens,
                "output_tokens": job.output_tokens, "reasoning_tokens": job.reasoning_tokens, "tool_calls": job.tool_calls,
                "retries": job.retries, "runtime_seconds": float(job.runtime_seconds),
                "usd": None if job.cost_usd is None else _USD.to_representation(job.cost_usd),
                "warning": job.cost_warning,
                "cap_usd": None if job.template.cost_cap_usd is None else _CAP.to_representation(job.template.cost_cap_usd),
            },
        }


_DATETIME = serializers.DateTimeField()
_USD = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=True)
_CAP = serializers.DecimalField(max_digits=10, decimal_places=2, coerce_to_string=True)


def _datetime_out(value):
    """What DRF's DateTimeField gives (ISO 8601 in the current time zone, UTC as "Z") at a
    fifth of its cost: a page of jobs formats a few hundred of these."""
    if value is None:
        return None
    if api_settings.DATETIME_FORMAT != ISO_8601 or not timezone.is_aware(value):
        return _DATETIME.to_representation(value)
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class JobEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor_kind = serializers.ChoiceField(choices=ActorKind.choices)
    actor = serializers.CharField(source="actor_label", help_text='A username, or "system (worker)" etc.')
    action = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    from_review_state = serializers.CharField()
    to_review_state = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.JSONField()


class ReportJsonOut(serializers.Serializer):
    job = serializers.CharField(help_text="The job's public id.")
    version = serializers.IntegerField()
    versions = serializers.ListField(child=serializers.IntegerField(), help_text="Every stored version, oldest first.")
    report = serializers.JSONField(help_text="The structured report (jobs/report_schema.py) as the model wrote it.")
    citations = serializers.JSONField(help_text="Cited source ids, and whether each is in the manifest.")


class ClaimOut(serializers.Serializer):
    reviewer = serializers.CharField(help_text="Username of the reviewer holding the draft.")
    expires_at = serializers.DateTimeField(help_text="When the claim lapses unless renewed.")


class ReviewQueueQueryIn(serializers.Serializer):
    template = serializers.SlugField(required=False, max_length=64, default="", help_text="Only this template.")
    workspace = serializers.SlugField(required=False, max_length=64, default="", help_text="Only this workspace.")


class ReviewQueueItemOut(serializers.Serializer):
    job = JobOut()
    ready_at = serializers.DateTimeField(allow_null=True, help_text="When the draft became ready.")
    waiting_seconds = serializers.IntegerField()
    claim = ClaimOut(allow_null=True, help_text="The open claim, if a reviewer holds the draft.")


MAX_METRICS_WINDOW = dt.timedelta(days=366)
_IN_METRICS_RANGE = f"Must be between {WINDOW_EARLIEST:%Y-%m-%dT%H:%M:%SZ} and {WINDOW_LATEST:%Y-%m-%dT%H:%M:%SZ}."
_METRICS_MOMENT = [MinValueValidator(WINDOW_EARLIEST, _IN_METRICS_RANGE), MaxValueValidator(WINDOW_LATEST, _IN_METRICS_RANGE)]


class MetricsQueryIn(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, validators=_METRICS_MOMENT,
        help_text="Start of the window (inclusive). Default: 30 days before `until`.",
    )
    until = serializers.DateTimeField(
        required=False, validators=_METRICS_MOMENT, help_text="End of the window (exclusive). Default: now.",
    )
    workspace = serializers.SlugField(required=False, max_length=64, help_text="One of your workspaces; default: all of yours.")

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        since = attrs.get("since") or until - dt.timedelta(days=30)
        if since >= until:
            raise serializers.ValidationError({"since": "Must be before until."})
        if until - since > MAX_METRICS_WINDOW:
            raise serializers.ValidationError({"since": f"The window is at most {MAX_METRICS_WINDOW.days} days."})
        return {**attrs, "since": since, "until": until}


# The metrics document is jobs.metrics.metrics_compute's dict, passed through as it is; these
# serializers describe it for the OpenAPI document.


class MetricsWindowOut(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


MetricsByStatusOut = type(
    "MetricsByStatusOut", (serializers.Serializer,), {status: serializers.IntegerField() for status in JobStatus.values}
)
MetricsDayOut = type(
    "MetricsDayOut",
    (serializers.Serializer,),
    {"date": serializers.DateField(), **{status: serializers.IntegerField() for status in JobStatus.values}},
)


class MetricsJobsOut(serializers.Serializer):
    submitted = serializers.IntegerField()
    by_status = MetricsByStatusOut(help_text="Jobs of the cohort by their status now.")


class MetricsSpreadOut(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)


class MetricsSourcesOut(serializers.Serializer):
    total = serializers.IntegerField()
    failed = serializers.IntegerField()
    per_job = serializers.FloatField(allow_null=True)


class MetricsReviewOut(serializers.Serializer):
    time_to_first_claim_seconds = MetricsSpreadOut()
    time_to_decision_seconds = MetricsSpreadOut()
    rejection_rate = serializers.FloatField(allow_null=True)
    revision_rounds_per_report = serializers.FloatField(allow_null=True)


class MetricsOut(serializers.Serializer):
    window = MetricsWindowOut()
    jobs = MetricsJobsOut()
    cost_per_completed_report_usd = serializers.FloatField(allow_null=True)
    runtime_seconds = MetricsSpreadOut(help_text="Runtime of jobs that produced a deliverable draft.")
    queued_seconds = MetricsSpreadOut(help_text="From submit to a worker first picking the job up.")
    model_calls_per_report = serializers.FloatField(allow_null=True)
    sources = MetricsSourcesOut()
    retry_rate_by_failure_class = serializers.DictField(child=serializers.FloatField(), help_text="failure class → share retried.")
    review = MetricsReviewOut()
    abandoned_jobs = serializers.IntegerField(help_text="Completed, never opened nor exported, finished over 7 days before `until`.")
    export_rate = serializers.FloatField(allow_null=True)
    states_over_time = MetricsDayOut(many=True, help_text="One row per day of the window: the cohort's jobs by status.")
