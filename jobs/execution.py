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

from reportdesk.models import Role
from sources.models import ManifestEntry, SourceStatus
from sources.services import manifest_freeze, source_ingest

from . import policy, services
from .heartbeat import dispatcher_ensure
from .models import (
    ACTIVE_STATUSES,
    LOCAL_MODEL,
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
CANCEL_FAILED = "cancel_failed"  # the provider refused our cancel for good (e.g. unknown id)


# --- Leases ------------------------------------------------------------------------------


def new_lease_token() -> str:
    return secrets.token_hex(8)


def _lease_expiry():
    return timezone.now() + dt.timedelta(seconds=settings.LEASE_SECONDS)


def lease_acquire(*, job_id: int, token: str) -> bool:
    """Take the job's lease if it is free, expired, or already ours."""
    now = timezone.now()
    return bool(
        ReportJob.objects.filter(pk=job_id)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(lease_token=token))
        .update(lease_token=token, lease_expires_at=_lease_expiry())
    )


def lease_renew(*, job_id: int, token: str) -> bool:
    """Extend our lease before something slow. False if another worker has taken the job."""
    return bool(ReportJob.objects.filter(pk=job_id, lease_token=token).update(lease_expires_at=_lease_expiry()))


def lease_release(*, job_id: int, token: str) -> None:
    """Give the job back. A job still in flight that nobody scheduled gets a check a minute
    from now, so a step that ended early can never make the dispatcher spin on it."""
    now = timezone.now()
    ReportJob.objects.filter(
        pk=job_id, lease_token=token, status__in=ACTIVE_STATUSES, next_check_at__lte=now
    ).update(next_check_at=now + dt.timedelta(seconds=settings.POLL_MAX_SECONDS))
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
    ReportJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(**updates)


def _lock(job: ReportJob) -> ReportJob:
    # of=("self",): lock the job row only, not its template's (every job shares five).
    return ReportJob.objects.select_for_update(of=("self",)).get(pk=job.pk)


def _ours(locked: ReportJob, *, attempt: JobAttempt, token: str, statuses=(JobStatus.PREPARING, JobStatus.RUNNING)) -> bool:
    """Is the locked job still in a state this step may act on, on this attempt, under our lease?"""
    return locked.status in statuses and locked.current_attempt_id == attempt.pk and locked.lease_token == token


def _waiting(job: ReportJob) -> bool:
    """A backoff is in force: the job was asked to come back later (retry, Retry-After)."""
    return job.next_check_at is not None and job.next_check_at > timezone.now()


# --- The step --------------------------------------------------------------------------

MAX_WORKER_ERRORS = 3  # unexpected errors on one attempt before the job fails as unknown


def job_advance(*, job_id: int, lease_token: str | None = None, provider: Provider | None = None) -> None:
    """Drive one job one step forward: queued → prepare and start; preparing → start;
    running → check. Does nothing if another worker holds the job. An unexpected error is
    recorded on the job and retried with backoff; the third on an attempt fails the job."""
    token = lease_token or new_lease_token()
    if not lease_acquire(job_id=job_id, token=token):
        return
    try:
        job = _load(job_id)
        if job is None:
            return
        provider = provider or get_provider()
        if job.status == JobStatus.QUEUED:
            job = job_prepare(job=job)
        if job is not None and job.status == JobStatus.PREPARING:
            attempt_start(job=job, provider=provider, token=token)
        elif job is not None and job.status == JobStatus.RUNNING:
            job_check(job=job, provider=provider, token=token)
    except Exception as exc:
        log.exception("job %s: the worker step failed", job_id)
        _worker_error(job_id=job_id, token=token, error=exc)
        raise
    finally:
        lease_release(job_id=job_id, token=token)


def _load(job_id: int) -> ReportJob | None:
    return ReportJob.objects.select_related("template", "workspace", "current_attempt").filter(pk=job_id).first()


def _worker_error(*, job_id: int, token: str, error: Exception) -> None:
    """Record an unexpected error; back off, or fail the job when it keeps happening."""
    try:
        with transaction.atomic():
            job = ReportJob.objects.select_for_update(of=("self",)).filter(pk=job_id, lease_token=token).first()
            if job is None or job.status not in ACTIVE_STATUSES:
                return
            attempt = job.current_attempt.number if job.current_attempt_id else 0
            earlier = job.events.filter(action="worker_error", details__attempt=attempt).count()
            message = f"{type(error).__name__}: {error}"[:500]
            services.event_record(
                job=job, actor=services.WORKER, action="worker_error", from_status=job.status,
                from_review_state=job.review_state, reason=message, details={"attempt": attempt, "error": message},
            )
            if earlier + 1 >= MAX_WORKER_ERRORS:
                services.job_fail(
                    job=job, failure_class=FailureClass.UNKNOWN,
                    message=f"The worker failed {earlier + 1} times on this attempt; last: {message}",
                )
            else:
                _schedule(job_id, seconds=30 * 2**earlier)
    except Exception:  # the database itself may be what failed; the lease then runs out
        log.exception("job %s: could not record the worker error", job_id)


def job_prepare(*, job: ReportJob) -> ReportJob | None:
    """queued → preparing: check the request still stands. The sources are fetched next, by
    attempt_start, which also fetches any added by an edit while preparing."""
    prepared = services.job_mark_preparing(job=job)
    if prepared is None:
        return None
    job = prepared
    if not job.template.is_active:
        services.job_fail(
            job=job, failure_class=FailureClass.VALIDATION_ERROR,
            message=f"The template {job.template.slug} was retired after the job was submitted.", retryable=False,
        )
        return None
    if policy.role_in(job.requested_by, job.workspace_id) not in (Role.REQUESTER, Role.OPERATOR):
        services.job_fail(
            job=job, failure_class=FailureClass.VALIDATION_ERROR,
            message=f"{job.requested_by.get_username()} may no longer submit reports in {job.workspace.slug}.",
            retryable=False,
        )
        return None
    return job


def sources_ingest(*, job: ReportJob, token: str) -> ReportJob | None:
    """Fetch and extract the attempt's pending sources. A job whose sources all fail fails
    as source_error (retryable when every failure was transient). Returns None if it failed."""
    attempt = job.current_attempt
    entries = list(ManifestEntry.objects.filter(manifest_id=attempt.manifest_id).select_related("item").order_by("position"))
    pending = [e for e in entries if e.item.status == SourceStatus.PENDING]
    for entry in pending:
        if not lease_renew(job_id=job.pk, token=token):
            return None
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
            attempt=attempt,
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


def attempt_start(*, job: ReportJob, provider: Provider, token: str) -> None:
    """Start the provider response for the job's current attempt (preparing → running)."""
    attempt = job.current_attempt
    if _waiting(job):
        return
    if _past_runtime(job, attempt):
        services.job_fail(
            job=job, failure_class=FailureClass.TIMEOUT, attempt=attempt,
            message=f"Could not start within the template's limit of {job.template.max_runtime_minutes} minutes.",
        )
        return
    call = ProviderCall.objects.filter(attempt=attempt).exclude(status=LOST).order_by("-id").first()
    if call is not None and call.provider_response_id:
        # A previous worker created the response but died before marking the job running.
        services.job_mark_running(job=job, call=call, response_id=call.provider_response_id, provider_status=call.status)
        return
    if call is not None and call.status == "" and not _call_lost(job=job, attempt=attempt, call=call):
        return
    if sources_ingest(job=job, token=token) is None:
        return
    _call_create(job=job, attempt=attempt, provider=provider, token=token)


def _past_runtime(job: ReportJob, attempt: JobAttempt) -> bool:
    started = attempt.started_at or job.created_at
    return timezone.now() > started + dt.timedelta(minutes=job.template.max_runtime_minutes)


def _call_lost(*, job: ReportJob, attempt: JobAttempt, call: ProviderCall) -> bool:
    """A call recorded without a response id: a worker died mid-create. It counts as one of
    the attempt's automatic retries. Returns True if a new create may go ahead."""
    if call.created_at > timezone.now() - dt.timedelta(seconds=settings.LEASE_SECONDS):
        # Too recent to be sure its worker is gone: look again once its lease would be over.
        _schedule(job.pk, seconds=settings.LEASE_SECONDS)
        return False
    ProviderCall.objects.filter(pk=call.pk, status="").update(
        status=LOST, error_message="The worker stopped before the provider answered."
    )
    JobAttempt.objects.filter(pk=attempt.pk).update(provider_retries=F("provider_retries") + 1)
    attempt.refresh_from_db(fields=["provider_retries"])
    services.event_record(
        job=job, actor=services.WORKER, action="provider_call_lost", from_status=job.status,
        from_review_state=job.review_state, details={"call": call.pk, "retry": attempt.provider_retries},
    )
    if attempt.provider_retries > settings.PROVIDER_MAX_AUTO_RETRIES:
        services.job_fail(
            job=job, failure_class=FailureClass.PROVIDER_ERROR, attempt=attempt,
            message=f"The worker stopped during the provider call {attempt.provider_retries} times.",
        )
        return False
    return True


def _call_create(*, job: ReportJob, attempt: JobAttempt, provider: Provider, token: str) -> None:
    """One provider create for the attempt: the first, a next step, or an automatic retry.

    The request is locked before it is built (an edit is refused from then on), so what is
    sent is what the job says. The ProviderCall is written before the create call and the
    response id right after, so a worker that dies in between leaves a call without an id
    for the next worker to see. The create is never retried inside.
    """
    with transaction.atomic():
        locked = _lock(job)
        if not _ours(locked, attempt=attempt, token=token):
            return
        if locked.request_locked_at is None:
            ReportJob.objects.filter(pk=job.pk).update(request_locked_at=timezone.now())
    job = _load(job.pk)
    attempt = job.current_attempt
    try:
        step = next_step(job=job, attempt=attempt)
    except ResearchLoop as exc:
        services.job_fail(job=job, failure_class=FailureClass.PROVIDER_ERROR, message=str(exc), attempt=attempt)
        return
    request, summary = build_request(job=job, attempt=attempt, provider_name=provider.name, step=step)
    with transaction.atomic():
        locked = _lock(job)
        if not _ours(locked, attempt=attempt, token=token):
            return
        call = ProviderCall.objects.create(
            job=job, attempt=attempt, step=request.step, provider=provider.name, model=request.model,
            previous_response_id=request.previous_response_id or "", request_summary=summary,
        )
        manifest_freeze(manifest=attempt.manifest)
        ReportJob.objects.filter(pk=job.pk).update(lease_expires_at=_lease_expiry())
    try:
        state = provider.create(request)
    except ProviderError as exc:
        ProviderCall.objects.filter(pk=call.pk, status="").update(
            status=CALL_ERROR, error_code=exc.code[:100], error_message=exc.message, completed_at=timezone.now()
        )
        _provider_error(job=job, attempt=attempt, error=exc)
        return
    except Exception as exc:
        # Not a provider answer but our own failure: this call is over (job_advance records it).
        ProviderCall.objects.filter(pk=call.pk, status="").update(
            status=CALL_ERROR, error_message=f"{type(exc).__name__}: {exc}"[:2000], completed_at=timezone.now()
        )
        raise
    ProviderCall.objects.filter(pk=call.pk, status="").update(
        provider_response_id=state.id, status=state.status or QUEUED, model=state.model or request.model
    )
    call.provider_response_id = state.id
    if state.is_terminal:
        # Some answers are ready at once: keep what they said, as a poll would.
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
            locked = _lock(job)
            if locked.status not in ACTIVE_STATUSES or locked.current_attempt_id != attempt.pk:
                return  # canceled or moved on meanwhile: nothing to retry
            JobAttempt.objects.filter(pk=attempt.pk).update(provider_retries=retries, last_error=error.message)
            ReportJob.objects.filter(pk=job.pk).update(retries=F("retries") + 1)
            _schedule(job.pk, seconds=delay)
            services.event_record(
                job=locked, actor=services.WORKER, action="provider_retry_scheduled", from_status=locked.status,
                from_review_state=locked.review_state, reason=error.message,
                details={"retry": retries, "of": settings.PROVIDER_MAX_AUTO_RETRIES, "in_seconds": round(delay, 1), "code": error.code},
            )
        return
    message = error.message
    if error.transient:
        message += f" Gave up after {attempt.provider_retries} automatic retries."
    services.job_fail(
        job=job, failure_class=error.failure_class, message=message, attempt=attempt,
        details={"code": error.code, "status_code": error.status_code, "transient": error.transient},
    )


def _cancel_quietly(provider: Provider, response_id: str) -> None:
    try:
        state = provider.cancel(response_id)
    except ProviderError as exc:
        log.warning("cancel of %s failed: %s", response_id, exc.message)
        if not exc.transient:
            ProviderCall.objects.filter(provider_response_id=response_id).update(status=CANCEL_FAILED, error_message=exc.message)
        return
    ProviderCall.objects.filter(provider_response_id=response_id).update(status=state.status or CANCELLED)


def provider_cancel(*, response_id: str, provider: Provider | None = None) -> None:
    """Best-effort cancel at the provider after the product has stopped the job; what fails
    transiently here is tried again by the orphan sweep."""
    _cancel_quietly(provider or get_provider(), response_id)


def job_check(*, job: ReportJob, provider: Provider, token: str) -> None:
    """Poll the running response once and act on what it says."""
    attempt = job.current_attempt
    latest = ProviderCall.objects.filter(attempt=attempt).exclude(status=LOST).order_by("-id").first()
    if latest is None or latest.status in (CALL_ERROR, FAILED) or (latest.status == COMPLETED and not _is_final(latest)):
        # A retry after a failed response, or the next research step (its predecessor ended
        # but the worker stopped before creating it): start it, unless a backoff is in force.
        if not _waiting(job):
            _call_create(job=job, attempt=attempt, provider=provider, token=token)
        return
    if not latest.provider_response_id:
        if _call_lost(job=job, attempt=attempt, call=latest):
            _call_create(job=job, attempt=attempt, provider=provider, token=token)
        return
    call = latest
    try:
        state = provider.retrieve(call.provider_response_id)
    except ProviderError as exc:
        ProviderCall.objects.filter(pk=call.pk).update(polls=call.polls + 1, last_checked_at=timezone.now(), error_code=exc.code[:100], error_message=exc.message)
        if exc.transient and not _past_runtime(job, attempt):
            _schedule(job.pk, seconds=max(poll_delay(call.polls), exc.retry_after or 0))
        elif exc.transient:
            services.job_fail(job=job, failure_class=FailureClass.TIMEOUT, attempt=attempt,
                              message=f"The provider could not be reached within the template's limit of {job.template.max_runtime_minutes} minutes.")
        else:
            services.job_fail(job=job, failure_class=exc.failure_class, message=exc.message, details={"code": exc.code}, attempt=attempt)
        return
    call.polls += 1
    _record_call_state(call=call, state=state)
    if state.status in PROVIDER_ACTIVE or not state.status:
        if _past_runtime(job, attempt):
            _cancel_quietly(provider, call.provider_response_id)
            services.job_fail(
                job=job, failure_class=FailureClass.TIMEOUT, attempt=attempt,
                message=f"Still running after the template's limit of {job.template.max_runtime_minutes} minutes; canceled at the provider.",
            )
        else:
            _schedule(job.pk, seconds=poll_delay(call.polls), checked=True)
        return
    ReportJob.objects.filter(pk=job.pk).update(last_checked_at=timezone.now())
    if state.status == COMPLETED and not _is_final(call):
        _call_create(job=job, attempt=attempt, provider=provider, token=token)
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
            job=job, failure_class=failure_class, attempt=attempt,
            message=f"The provider stopped before the report was complete ({reason}).", details={"incomplete_reason": reason},
        )
    elif state.status == CANCELLED:
        services.job_fail(job=job, failure_class=FailureClass.PROVIDER_ERROR, attempt=attempt, message="The provider canceled the response.")
    else:
        services.job_fail(job=job, failure_class=FailureClass.UNKNOWN, attempt=attempt, message=f"Unknown provider status '{state.status}'.")


# --- Multi-step research --------------------------------------------------------------

MAX_TOOL_ROUNDS = 3  # function-call answers per research question before the model must write


class ResearchLoop(Exception):
    """The model kept calling tools instead of writing its notes."""


def _is_final(call: ProviderCall) -> bool:
    """Does this call's answer hold the report? Read from the call itself, so a template
    changed mid-run cannot turn a research plan into a draft."""
    return call.step in ("report", "synthesize")


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
        locked = _lock(job)
        if locked.status != JobStatus.RUNNING or locked.current_attempt_id != attempt.pk:
            return
        Artifact.objects.bulk_create(
            [Artifact(job=job, attempt=attempt, kind=kind, content=content) for kind, content in contents.items()],
            ignore_conflicts=True,
        )
        runtime = (timezone.now() - (attempt.started_at or locked.created_at)).total_seconds()
        ReportJob.objects.filter(pk=job.pk).update(runtime_seconds=locked.runtime_seconds + runtime)
        services.job_finish(job=locked, attempt=attempt, version=locked.version + 1, offline=state.model == LOCAL_MODEL)
