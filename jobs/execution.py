"""The worker's side of a job: prepare sources, start the provider response, follow it, and
store the result. `job_advance` drives one job one step forward and is safe to call any
number of times, from any worker: a lease on the job row makes sure only one worker handles
a job at a time, and every step re-reads the job's state before it acts.

Backoff state (next_check_at, polls, provider_retries, last error) lives on the models, not
in the queue.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from sources.models import ManifestEntry, SourceStatus
from sources.services import manifest_freeze, source_ingest

from . import services
from .heartbeat import dispatcher_ensure
from .models import (
    ArtifactKind,
    Artifact,
    FailureClass,
    JobAttempt,
    JobStatus,
    ProviderCall,
    ReportJob,
    TemplateMode,
)
from .pricing import usage_cost
from .providers import get_provider
from .providers.base import (
    ACTIVE_STATUSES as PROVIDER_ACTIVE,
    CANCELLED,
    COMPLETED,
    FAILED,
    INCOMPLETE,
    QUEUED,
    Provider,
    TRANSIENT_RESPONSE_ERRORS,
    ProviderError,
    ResponseState,
    failure_class_for_code,
)
from .rendering import ReportFormatError, cited_source_ids, parse_report_json, render_html, report_to_markdown
from .report_schema import MAX_RESEARCH_QUESTIONS
from .requests import Step, build_request, previous_draft_response_id, search_sources

log = logging.getLogger(__name__)

# ProviderCall.status values of our own, beside the provider's.
LOST = "lost"  # the worker died before the provider answered the create
CALL_ERROR = "error"  # the create call itself failed


# --- Leases ------------------------------------------------------------------------------


def new_lease_token() -> str:
    return secrets.token_hex(8)


def lease_acquire(*, job_id: int, token: str) -> bool:
    """Take the job's lease if it is free, expired, or already ours."""
    now = timezone.now()
    return bool(
        ReportJob.objects.filter(pk=job_id)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_token=token))
        .update(lease_token=token, lease_expires_at=now + dt.timedelta(seconds=settings.LEASE_SECONDS))
    )


def lease_release(*, job_id: int, token: str) -> None:
    ReportJob.objects.filter(pk=job_id, lease_token=token).update(lease_token="", lease_expires_at=None)


def poll_delay(polls: int) -> float:
    """Seconds until the next check: soon at first, backing off to POLL_MAX_SECONDS, jittered."""
    base = min(settings.POLL_MAX_SECONDS, settings.POLL_FIRST_SECONDS * settings.POLL_BACKOFF ** polls)
    return base * (1 + random.uniform(-settings.POLL_JITTER, settings.POLL_JITTER))


def _schedule(job_id: int, *, seconds: float, checked: bool = False) -> None:
    now = timezone.now()
    updates = {"next_check_at": now + dt.timedelta(seconds=seconds)}
    if checked:
        updates["last_checked_at"] = now
    ReportJob.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.PREPARING, JobStatus.RUNNING]).update(**updates)


# --- The step --------------------------------------------------------------------------


def job_advance(*, job_id: int, lease_token: str | None = None, provider: Provider | None = None) -> None:
    """Drive one job one step forward: queued → prepare and start; preparing → start;
    running → check. Does nothing if another worker holds the job."""
    token = lease_token or new_lease_token()
    if not lease_acquire(job_id=job_id, token=token):
        return
    try:
        job = ReportJob.objects.select_related("template", "workspace", "current_attempt").filter(pk=job_id).first()
        if job is None:
            return
        provider = provider or get_provider()
        if job.status == JobStatus.QUEUED:
            job = job_prepare(job=job)
        if job is not None and job.status == JobStatus.PREPARING:
            attempt_start(job=job, provider=provider)
        elif job is not None and job.status == JobStatus.RUNNING:
            job_check(job=job, provider=provider)
    finally:
        lease_release(job_id=job_id, token=token)


def job_prepare(*, job: ReportJob) -> ReportJob | None:
    """queued → preparing; ingest the sources."""
    prepared = services.job_mark_preparing(job=job)
    if prepared is None:
        return None
    return sources_ingest(job=prepared)


def sources_ingest(*, job: ReportJob) -> ReportJob | None:
    """Fetch and extract the attempt's pending sources. A job whose sources all fail fails
    as source_error (retryable when every failure was transient). Returns None if it failed."""
    attempt = job.current_attempt
    entries = list(ManifestEntry.objects.filter(manifest_id=attempt.manifest_id).select_related("item").order_by("position"))
    pending = [e for e in entries if e.item.status == SourceStatus.PENDING]
    for entry in pending:
        entry.item = source_ingest(item=entry.item)
    ready = [e for e in entries if e.item.status == SourceStatus.READY]
    failed = [e for e in entries if e.item.status == SourceStatus.FAILED]
    if entries and not ready:
        reasons = "; ".join(f"{e.sid} ({e.item.url or e.item.title}): {e.item.error}" for e in failed)
        transient = all(e.item.error_transient for e in failed)
        services.job_fail(
            job=job,
            failure_class=FailureClass.SOURCE_ERROR,
            message=f"None of the sources could be read. {reasons}",
            details={"transient": transient},
            retryable=transient,
        )
        return None
    newly_failed = [e for e in failed if e in pending]
    if newly_failed:
        services.event_record(
            job=job, actor=services.WORKER, action="sources_partially_failed", from_status=job.status,
            from_review_state=job.review_state,
            details={"failed": [{"sid": e.sid, "error": e.item.error} for e in newly_failed]},
        )
    return job


def attempt_start(*, job: ReportJob, provider: Provider) -> None:
    """Start the provider response for the job's current attempt (preparing → running)."""
    attempt = job.current_attempt
    call = ProviderCall.objects.filter(attempt=attempt).exclude(status=LOST).order_by("-id").first()
    if call is not None and call.provider_response_id:
        # A previous worker created the response but died before marking the job running.
        services.job_mark_running(job=job, call=call, response_id=call.provider_response_id, provider_status=call.status)
        return
    if call is not None and call.status == "":
        # We hold the lease, so no one else is mid-create: that worker died mid-call.
        ProviderCall.objects.filter(pk=call.pk, status="").update(
            status=LOST, error_message="The worker stopped before the provider answered."
        )
        services.event_record(
            job=job, actor=services.WORKER, action="provider_call_lost", from_status=job.status,
            from_review_state=job.review_state, details={"call": call.pk},
        )
    # Sources added by an edit while preparing have not been fetched yet.
    if sources_ingest(job=job) is None:
        return
    _call_create(job=job, attempt=attempt, provider=provider)


def _call_create(*, job: ReportJob, attempt: JobAttempt, provider: Provider) -> None:
    """One provider create for the attempt: the first, or an automatic retry.

    The ProviderCall is written before the create call and the response id right after, so
    a worker that dies in between leaves a call without an id for the next worker to see.
    The create is never retried inside: transient errors come back here through the backoff.
    """
    try:
        step = next_step(job=job, attempt=attempt)
    except ResearchLoop as exc:
        services.job_fail(job=job, failure_class=FailureClass.PROVIDER_ERROR, message=str(exc))
        return
    request, summary = build_request(job=job, attempt=attempt, provider_name=provider.name, step=step)
    now = timezone.now()
    with transaction.atomic():
        locked = ReportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in (JobStatus.PREPARING, JobStatus.RUNNING) or locked.current_attempt_id != attempt.pk:
            return
        call = ProviderCall.objects.create(
            job=job, attempt=attempt, step=request.step, provider=provider.name, model=request.model,
            previous_response_id=request.previous_response_id or "", request_summary=summary,
        )
        ReportJob.objects.filter(pk=job.pk).update(request_locked_at=now)
        manifest_freeze(manifest=attempt.manifest)
    try:
        state = provider.create(request)
    except ProviderError as exc:
        ProviderCall.objects.filter(pk=call.pk).update(
            status=CALL_ERROR, error_code=exc.code[:100], error_message=exc.message, completed_at=timezone.now()
        )
        _provider_error(job=job, attempt=attempt, error=exc)
        return
    ProviderCall.objects.filter(pk=call.pk).update(
        provider_response_id=state.id, status=state.status or QUEUED, model=state.model or request.model
    )
    if state.is_terminal:
        # Some answers are ready at once: keep what they said, as a poll would.
        call.provider_response_id = state.id
        _record_call_state(call=call, state=state)
    if job.status == JobStatus.PREPARING:
        moved = services.job_mark_running(job=job, call=call, response_id=state.id, provider_status=state.status)
        if moved:
            dispatcher_ensure()
    else:
        moved = ReportJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, current_attempt=attempt).update(
            provider_response_id=state.id,
            next_check_at=timezone.now() + dt.timedelta(seconds=settings.POLL_FIRST_SECONDS),
        )
    if not moved:
        # Canceled or expired while the create was in flight: the product's cancel wins.
        _cancel_quietly(provider, state.id)


def _provider_error(*, job: ReportJob, attempt: JobAttempt, error: ProviderError) -> None:
    """A transient error is retried automatically, a bounded number of times with backoff;
    anything else, or the last transient one, fails the job."""
    if error.transient and attempt.provider_retries < settings.PROVIDER_MAX_AUTO_RETRIES:
        retries = attempt.provider_retries + 1
        delay = settings.PROVIDER_RETRY_BASE_SECONDS * 2 ** (retries - 1)
        if error.retry_after:
            delay = max(delay, error.retry_after)
        with transaction.atomic():
            JobAttempt.objects.filter(pk=attempt.pk).update(provider_retries=retries, last_error=error.message)
            ReportJob.objects.filter(pk=job.pk).update(retries=F("retries") + 1)
            _schedule(job.pk, seconds=delay)
            services.event_record(
                job=job, actor=services.WORKER, action="provider_retry_scheduled", from_status=job.status,
                from_review_state=job.review_state, reason=error.message,
                details={"retry": retries, "of": settings.PROVIDER_MAX_AUTO_RETRIES, "in_seconds": round(delay, 1), "code": error.code},
            )
        return
    message = error.message
    if error.transient:
        message += f" Gave up after {attempt.provider_retries} automatic retries."
    services.job_fail(
        job=job, failure_class=error.failure_class, message=message,
        details={"code": error.code, "status_code": error.status_code, "transient": error.transient},
    )


def _cancel_quietly(provider: Provider, response_id: str) -> None:
    try:
        state = provider.cancel(response_id)
    except ProviderError as exc:
        log.warning("cancel of %s failed: %s", response_id, exc.message)
        return
    ProviderCall.objects.filter(provider_response_id=response_id).update(status=state.status or CANCELLED)


def provider_cancel(*, response_id: str, provider: Provider | None = None) -> None:
    """Best-effort cancel at the provider after the product has canceled the job."""
    _cancel_quietly(provider or get_provider(), response_id)


def job_check(*, job: ReportJob, provider: Provider) -> None:
    """Poll the running response once and act on what it says."""
    attempt = job.current_attempt
    call = ProviderCall.objects.filter(attempt=attempt).exclude(status=LOST).order_by("-id").first()
    if call is None or call.status in (CALL_ERROR, FAILED):
        # The last response failed transiently and its retry is due: start the next one.
        _call_create(job=job, attempt=attempt, provider=provider)
        return
    if call.status == COMPLETED and not _is_final(job, call):
        # A research step ended but its successor was never created (the worker stopped).
        _call_create(job=job, attempt=attempt, provider=provider)
        return
    if not call.provider_response_id:
        ProviderCall.objects.filter(pk=call.pk, status="").update(status=LOST)
        _call_create(job=job, attempt=attempt, provider=provider)
        return
    started = attempt.started_at or job.created_at
    if timezone.now() > started + dt.timedelta(minutes=job.template.max_runtime_minutes):
        _cancel_quietly(provider, call.provider_response_id)
        services.job_fail(
            job=job, failure_class=FailureClass.TIMEOUT,
            message=f"Still running after the template's limit of {job.template.max_runtime_minutes} minutes; canceled at the provider.",
        )
        return
    try:
        state = provider.retrieve(call.provider_response_id)
    except ProviderError as exc:
        ProviderCall.objects.filter(pk=call.pk).update(polls=call.polls + 1, last_checked_at=timezone.now(), error_code=exc.code[:100], error_message=exc.message)
        if exc.transient:
            _schedule(job.pk, seconds=max(poll_delay(call.polls), exc.retry_after or 0))
        else:
            services.job_fail(job=job, failure_class=exc.failure_class, message=exc.message, details={"code": exc.code})
        return
    call.polls += 1
    _record_call_state(call=call, state=state)
    if state.status in PROVIDER_ACTIVE or not state.status:
        _schedule(job.pk, seconds=poll_delay(call.polls), checked=True)
        return
    ReportJob.objects.filter(pk=job.pk).update(last_checked_at=timezone.now())
    if state.status == COMPLETED and not _is_final(job, call):
        _call_create(job=job, attempt=attempt, provider=provider)
    elif state.status == COMPLETED:
        result_store(job=job, attempt=attempt, state=state)
    elif state.status == FAILED:
        code = state.error_code or "unknown"
        _provider_error(
            job=job, attempt=attempt,
            error=ProviderError(
                f"The provider reported the response failed: {state.error_message or code}",
                transient=code in TRANSIENT_RESPONSE_ERRORS, code=code, failure_class=failure_class_for_code(code),
            ),
        )
    elif state.status == INCOMPLETE:
        reason = state.incomplete_reason or "unknown"
        failure_class = FailureClass.POLICY_BLOCK if reason == "content_filter" else FailureClass.PROVIDER_ERROR
        services.job_fail(
            job=job, failure_class=failure_class,
            message=f"The provider stopped before the report was complete ({reason}).", details={"incomplete_reason": reason},
        )
    elif state.status == CANCELLED:
        services.job_fail(job=job, failure_class=FailureClass.PROVIDER_ERROR, message="The provider canceled the response.")
    else:
        services.job_fail(job=job, failure_class=FailureClass.UNKNOWN, message=f"Unknown provider status '{state.status}'.")


# --- Multi-step research --------------------------------------------------------------

MAX_TOOL_ROUNDS = 3  # function-call answers per research question before the model must write


class ResearchLoop(Exception):
    """The model kept calling tools instead of writing its notes."""


def _is_final(job: ReportJob, call: ProviderCall) -> bool:
    return job.template.mode != TemplateMode.MULTI_STEP or call.step == "synthesize"


def _plan_questions(plan: ProviderCall) -> list[str]:
    try:
        questions = json.loads(plan.output.get("text") or "{}").get("questions", [])
    except (ValueError, AttributeError):
        return []
    return [q.strip() for q in questions if isinstance(q, str) and q.strip()][:MAX_RESEARCH_QUESTIONS]


def _answer(attempt: JobAttempt, function_call: dict, *, exhausted: bool) -> dict:
    if exhausted:
        result = {"error": "Search limit reached for this question: write your notes now."}
    elif function_call.get("name") != "search_sources":
        result = {"error": f"Unknown function {function_call.get('name')!r}; only search_sources exists."}
    else:
        try:
            query = json.loads(function_call.get("arguments") or "{}").get("query", "")
        except (ValueError, AttributeError):
            query = ""
        result = {"passages": search_sources(attempt=attempt, query=str(query))} if query else {"error": "Give a query."}
    return {"type": "function_call_output", "call_id": function_call.get("call_id", ""), "output": json.dumps(result)}


def next_step(*, job: ReportJob, attempt: JobAttempt) -> Step:
    """The step to run next, from what the attempt's calls have answered so far."""
    first = Step(previous_response_id=previous_draft_response_id(job=job, attempt=attempt))
    if job.template.mode != TemplateMode.MULTI_STEP:
        return first
    done = list(ProviderCall.objects.filter(attempt=attempt, status=COMPLETED).order_by("id"))
    if not done:
        return Step(name="plan", previous_response_id=first.previous_response_id)
    last = done[-1]
    questions = _plan_questions(done[0])
    number = int(last.step.split("-")[1]) if last.step.startswith("research-") else 0
    pending = last.output.get("function_calls") or []
    if pending:
        rounds = sum(1 for c in done if c.step == last.step)
        if rounds > MAX_TOOL_ROUNDS + 1:
            raise ResearchLoop(f"The model kept calling tools in {last.step} instead of writing its notes.")
        return Step(
            name=last.step, previous_response_id=last.provider_response_id,
            question=questions[number - 1] if 0 < number <= len(questions) else "", number=number, of=len(questions),
            input_items=tuple(_answer(attempt, fc, exhausted=rounds > MAX_TOOL_ROUNDS) for fc in pending),
        )
    if number < len(questions):
        return Step(
            name=f"research-{number + 1}", previous_response_id=last.provider_response_id,
            question=questions[number], number=number + 1, of=len(questions),
        )
    return Step(name="synthesize", previous_response_id=last.provider_response_id)


def _record_call_state(*, call: ProviderCall, state: ResponseState) -> None:
    updates = {
        "status": state.status or call.status,
        "polls": call.polls,
        "last_checked_at": timezone.now(),
        "error_code": state.error_code[:100],
        "error_message": state.error_message,
    }
    if state.is_terminal:
        usage = state.usage
        updates.update(
            input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens, tool_calls=usage.tool_calls,
            cost_usd=usage_cost(model=state.model or call.model, usage=usage, web_search_calls=usage.tool_calls),
            completed_at=call.completed_at or timezone.now(), model=state.model or call.model,
            output={
                "text": state.output_text,
                "function_calls": [
                    {"call_id": fc.call_id, "name": fc.name, "arguments": fc.arguments} for fc in state.function_calls
                ],
            },
        )
    ProviderCall.objects.filter(pk=call.pk).update(**updates)
    if state.is_terminal:
        _job_totals(job_id=call.job_id)


def _job_totals(*, job_id: int) -> None:
    totals = ProviderCall.objects.filter(job_id=job_id).aggregate(
        input_tokens=Sum("input_tokens"), cached_tokens=Sum("cached_tokens"), output_tokens=Sum("output_tokens"),
        reasoning_tokens=Sum("reasoning_tokens"), tool_calls=Sum("tool_calls"), cost_usd=Sum("cost_usd"),
    )
    model = ProviderCall.objects.filter(job_id=job_id).order_by("-id").values_list("model", flat=True).first() or ""
    ReportJob.objects.filter(pk=job_id).update(
        model=model, **{k: v or (Decimal(0) if k == "cost_usd" else 0) for k, v in totals.items()}
    )


def result_store(*, job: ReportJob, attempt: JobAttempt, state: ResponseState) -> None:
    """Store the draft's artifacts and move the job on. Written once per attempt: running it
    twice changes nothing, and a job that is no longer running on this attempt is left alone."""
    try:
        report = parse_report_json(state.output_text)
    except ReportFormatError as exc:
        services.job_fail(
            job=job, failure_class=FailureClass.PROVIDER_ERROR,
            message=f"The model's answer was not a valid structured report: {exc}",
        )
        return
    markdown = report_to_markdown(report)

    entries = {e.sid: e.item for e in ManifestEntry.objects.filter(manifest_id=attempt.manifest_id).select_related("item")}
    citations = [
        {"source_id": sid, "in_manifest": sid in entries,
         "title": entries[sid].title if sid in entries else "", "url": entries[sid].url if sid in entries else ""}
        for sid in cited_source_ids(report)
    ]
    contents = {
        ArtifactKind.REPORT_MARKDOWN: markdown,
        ArtifactKind.STRUCTURED_JSON: json.dumps(report, ensure_ascii=False, indent=2),
        ArtifactKind.CITATIONS: json.dumps(citations, ensure_ascii=False),
        ArtifactKind.EVIDENCE: json.dumps(report.get("evidence", []) if isinstance(report.get("evidence"), list) else [], ensure_ascii=False),
        ArtifactKind.SOURCE_NOTES: json.dumps(report.get("source_notes", []) if isinstance(report.get("source_notes"), list) else [], ensure_ascii=False),
        ArtifactKind.RENDERED_HTML: render_html(markdown),
    }
    with transaction.atomic():
        locked = ReportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != JobStatus.RUNNING or locked.current_attempt_id != attempt.pk:
            return
        Artifact.objects.bulk_create(
            [Artifact(job=job, attempt=attempt, kind=kind, content=content) for kind, content in contents.items()],
            ignore_conflicts=True,
        )
        runtime = (timezone.now() - (attempt.started_at or locked.created_at)).total_seconds()
        ReportJob.objects.filter(pk=job.pk).update(runtime_seconds=locked.runtime_seconds + runtime)
        services.job_finish(job=locked, attempt=attempt, version=locked.version + 1)
