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
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sources.models import SourceStatus
from sources.selectors import manifest_entries
from sources.services import manifest_freeze, source_ingest
from sources.urls import url_key

from .. import events, policy, services
from ..breaker import BreakerSnapshot, backoff_share, breaker_admits, breaker_trip, is_breaker_error, is_shared_rate_limit, job_hold
from ..budgets import call_estimate
from ..models import (
    ACTIVE_STATUSES,
    LOCAL_MODEL,
    ArtifactKind,
    CallStatus,
    FailureClass,
    JobAttempt,
    JobStatus,
    ProviderCall,
    ReportJob,
    TemplateMode,
)
from ..providers import get_provider
from ..providers.base import (
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
from ..report_schema import MAX_RESEARCH_QUESTIONS
from ..rendering import ReportFormatError, cited_source_ids, parse_report_json, render_html, report_to_markdown, web_citations
from ..selectors import attempt_awaits_retry, attempt_search_urls
from .cadence import poll_delay
from .dispatcher import dispatcher_ensure
from .lease import (
    job_lease_acquire,
    job_lease_expiry,
    job_lease_heartbeat,
    job_lease_release,
    job_lease_renew,
    new_lease_token,
)
from .prompt import PREVIOUS_RESPONSE_NOT_FOUND, build_request
from .reconcile import call_reconcile, call_unconfirmed, create_ambiguous
from .research import BudgetHeld, StepRefused, call_is_final, call_to_follow, next_step, research_check_in, research_startable
from .stream_watch import stream_follow, stream_followable, stream_unwatched
from .usage import call_usage_fields, job_usage_totals
from .web_pages import web_pages_fetch

log = logging.getLogger(__name__)


def _response_age(call: ProviderCall) -> float:
    return (timezone.now() - call.created_at).total_seconds()


def _schedule(job_id: int, *, seconds: float, checked: bool = False) -> None:
    now = timezone.now()
    updates = {"next_check_at": now + dt.timedelta(seconds=seconds)}
    if checked:
        updates["last_checked_at"] = now
    ReportJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES).update(**updates)


def still_ours(
    job: ReportJob, *, attempt: JobAttempt, token: str | None = None, statuses=(JobStatus.PREPARING, JobStatus.RUNNING)
) -> bool:
    """The one "is this still mine?" guard: is the job (read under its row lock) still in a
    state this step may act on, on this attempt, and (given a token) under our lease?
    A cancel, an expiry, a new attempt or another worker's takeover all make it False."""
    return (
        job.status in statuses
        and job.current_attempt_id == attempt.pk
        and (token is None or job.lease_token == token)
    )


def _waiting(job: ReportJob) -> bool:
    """A backoff is in force: the job was asked to come back later (retry, Retry-After)."""
    return job.next_check_at is not None and job.next_check_at > timezone.now()


# --- The step --------------------------------------------------------------------------

MAX_WORKER_ERRORS = 3  # unexpected errors on one attempt before the job fails as unknown


def job_advance(
    *, job_id: int, lease_token: str | None = None, provider: Provider | None = None, breakers: BreakerSnapshot | None = None
) -> None:
    """Drive one job one step forward: queued → prepare and start; preparing → start;
    running → check. Does nothing if another worker holds the job. An unexpected error is
    recorded on the job and retried with backoff; the third on an attempt fails the job.
    `breakers`: the breaker rows a batch read once for all its steps (breaker_rows())."""
    token = lease_token or new_lease_token()
    # When this step began to look at the job: for a batch's step, when the batch asked the
    # provider ahead (a wake after that is one the step's answer may predate, and stands).
    began = timezone.now()
    asked_at = getattr(provider, "asked_at", None)
    if asked_at is not None and asked_at < began:
        began = asked_at
    if not job_lease_acquire(job_id=job_id, token=token):
        return
    try:
        with job_lease_heartbeat(job_id=job_id, token=token):
            job = _load(job_id)
            if job is None:
                return
            # Every log line of this step, ours or a library's, carries the job and its attempt.
            structlog.contextvars.bind_contextvars(
                job=job.public_id, attempt=job.current_attempt.number if job.current_attempt_id else None
            )
            log.info("worker step on a %s job", job.status)
            provider = provider or get_provider()
            if not breaker_admits(job=job, provider=provider, snapshot=breakers):
                return  # a provider hold or a shared backoff: the job keeps its state and waits
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
        job_lease_release(job_id=job_id, token=token, since=began)
        structlog.contextvars.unbind_contextvars("job", "attempt")


def _load(job_id: int) -> ReportJob | None:
    return ReportJob.objects.select_related("template", "workspace", "current_attempt").filter(pk=job_id).first()


def _worker_error(*, job_id: int, token: str, error: Exception) -> None:
    """Record an unexpected error; back off, or fail the job when it keeps happening."""
    try:
        with transaction.atomic():
            job = services.job_lock(job_id)
            if job is None or not still_ours(job, attempt=job.current_attempt, token=token, statuses=ACTIVE_STATUSES):
                return
            attempt = job.current_attempt.number
            earlier = events.worker_errors_count(job=job, attempt=attempt)
            message = f"{type(error).__name__}: {error}"[:500]
            events.worker_error_recorded(job=job, attempt=attempt, message=message)
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
    if not policy.may_submit(job.requested_by, job.workspace_id):
        services.job_fail(
            job=job, failure_class=FailureClass.VALIDATION_ERROR,
            message=f"{job.requested_by.get_username()} may no longer submit reports in {job.workspace.slug}.",
            retryable=False,
        )
        return None
    return job


def attempt_sources_fetch(*, job: ReportJob, token: str) -> ReportJob | None:
    """Fetch and extract the attempt's pending sources. A job whose sources all fail fails
    as source_error (retryable when every failure was transient). Returns None if it failed."""
    attempt = job.current_attempt
    entries = manifest_entries(manifest_id=attempt.manifest_id)
    pending = [e for e in entries if e.item.status == SourceStatus.PENDING]
    for entry in pending:
        if not job_lease_renew(job_id=job.pk, token=token):
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
        events.sources_partially_failed(job=job, failed=[{"sid": e.sid, "error": e.item.error} for e in newly_failed])
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
    call = current_call(attempt)
    if call is not None and call.provider_response_id:
        # A previous worker created the response but died before marking the job running,
        # or a webhook matched the response of a create that never answered.
        services.job_mark_running(job=job, call=call, response_id=call.provider_response_id, provider_status=call.status)
        return
    if (
        call is not None
        and call.status in (CallStatus.PENDING, CallStatus.UNCONFIRMED)
        and not _call_lost(job=job, attempt=attempt, call=call, provider=provider)
    ):
        return
    if attempt_sources_fetch(job=job, token=token) is None:
        return
    _call_create(job=job, attempt=attempt, provider=provider, token=token)


def _past_runtime(job: ReportJob, attempt: JobAttempt) -> bool:
    started = attempt.started_at or job.created_at
    return timezone.now() > started + dt.timedelta(minutes=job.template.max_runtime_minutes)


def current_call(attempt: JobAttempt) -> ProviderCall | None:
    """The attempt's latest call the job follows: not one given up as lost, not an orphan."""
    return (
        ProviderCall.objects.filter(attempt=attempt, orphan=False).exclude(status=CallStatus.LOST).order_by("-id").first()
    )


def _call_estimate(*, job: ReportJob, request) -> Decimal | None:
    """The least the call can cost (jobs.budgets.call_estimate), for the budgets to hold while it runs."""
    carried = 0
    if request.previous_response_id:
        previous = ProviderCall.objects.filter(job=job, provider_response_id=request.previous_response_id).values_list(
            "input_tokens", "output_tokens").first()
        carried = sum(previous) if previous else 0
    sent = len(request.instructions) + len(request.input_text) + sum(len(json.dumps(item)) for item in request.input_items)
    return call_estimate(model=request.model, input_chars=sent, carried_tokens=carried, max_output_tokens=request.max_output_tokens)


def _call_lost(*, job: ReportJob, attempt: JobAttempt, call: ProviderCall, provider: Provider) -> bool:
    """A call recorded without a response id, met under our lease: its create never
    answered (a timeout, a dropped connection, a worker that died). The provider may have
    started a response, so nothing is created again until it is reconciled
    (jobs.worker.reconcile). Returns True if a new create may go ahead."""
    return call_reconcile(job=job, attempt=attempt, call=call, provider=provider)


def _call_create(*, job: ReportJob, attempt: JobAttempt, provider: Provider, token: str) -> bool:
    """One provider create for the attempt: the first, a next step, or an automatic retry.
    Returns whether the job now follows a new response (False: the create failed and waits
    for its retry or its reconcile, the step was refused, or the job moved on meanwhile).

    One lock for the whole preparation: under it the request is locked (an edit is refused
    from then on), built from the job as it now stands, and the ProviderCall written, so what
    is sent is what the job says. The response id is stored right after the create, so a
    worker that dies in between leaves a call without an id for the next worker to see. The
    create is never retried inside.
    """
    with transaction.atomic():
        locked = services.job_lock(job.pk)
        if locked is None or not still_ours(locked, attempt=attempt, token=token):
            return False
        if locked.request_locked_at is None:
            locked.request_locked_at = timezone.now()
        locked.lease_expires_at = job_lease_expiry()
        locked.save(update_fields=["request_locked_at", "lease_expires_at"])
        job = locked
        # An edit may have changed the attempt's manifest until the lock above: read it now.
        attempt = JobAttempt.objects.select_related("manifest").get(pk=attempt.pk)
        try:
            step = next_step(job=job, attempt=attempt)
        except StepRefused as exc:
            services.job_fail(job=job, failure_class=exc.failure_class, message=str(exc), attempt=attempt)
            return False
        except BudgetHeld as exc:
            log.info("job %s waits: %s", job.public_id, exc)
            return False  # looked at again when the lease is given back
        request, summary = build_request(job=job, attempt=attempt, provider_name=provider.name, step=step)
        call = ProviderCall.objects.create(
            job=job, attempt=attempt, step=request.step, provider=provider.name, model=request.model,
            previous_response_id=request.previous_response_id or "", request_summary=summary,
            estimated_cost_usd=_call_estimate(job=job, request=request),
        )
        manifest_freeze(manifest=attempt.manifest)
    try:
        state = provider.create(request)
    except ProviderError as exc:
        if create_ambiguous(exc):
            # The request may have reached the provider: a response may be running.
            call_unconfirmed(job=job, call=call, reason=exc.message, gave_up_at=timezone.now())
            return False
        ProviderCall.objects.filter(pk=call.pk, status=CallStatus.PENDING).update(
            status=CallStatus.ERROR, error_code=exc.code[:100], error_message=exc.message, completed_at=timezone.now()
        )
        _provider_error(job=job, attempt=attempt, error=exc)
        return False
    except Exception as exc:
        # Our own failure, perhaps after the request went out: reconcile before creating
        # again (job_advance records the error and backs off).
        call_unconfirmed(job=job, call=call, reason=f"{type(exc).__name__}: {exc}", gave_up_at=timezone.now())
        raise
    # Followed through its stream in this process? Then its first minute's checks are a safety
    # net. In multi-step research too: the end of any question wakes the job (services.job_wake).
    watched = stream_followable(provider=provider, state=state)
    recorded = ProviderCall.objects.filter(
        pk=call.pk, provider_response_id=None, status__in=[CallStatus.PENDING, CallStatus.UNCONFIRMED]
    ).update(
        provider_response_id=state.id, status=state.status or QUEUED, model=state.model or request.model,
        error_message="", watched=watched,
    )
    if not recorded:
        # Our lease lapsed mid-create and another worker gave this call up (or matched it to
        # a response it found): this response is a duplicate.
        _duplicate_record(call=call, state=state, provider=provider)
        return False
    call.provider_response_id, call.watched = state.id, watched
    if state.is_terminal:
        # Some answers are ready at once: keep what they said, as a poll would.
        _record_call_state(call=call, state=state)
    first_check = poll_delay(age=0, watched=watched)
    if job.status == JobStatus.PREPARING:
        moved = services.job_mark_running(
            job=job, call=call, response_id=state.id, provider_status=state.status, check_in=first_check
        )
        if moved:
            dispatcher_ensure()
    else:
        moved = _next_response_followed(job=job, attempt=attempt, response_id=state.id, first_check=first_check)
    if not moved:
        # Canceled or expired while the create was in flight: the product's cancel wins.
        response_cancel(response_id=state.id, provider=provider)
        return False
    if watched and not stream_follow(provider=provider, state=state):
        # The watch filled up since it was asked: the checks of the first minute are the grid's.
        stream_unwatched(response_id=state.id)
    return True


def _next_response_followed(*, job: ReportJob, attempt: JobAttempt, response_id: str, first_check: float) -> bool:
    """A running job follows the response of its next step (or of a retry). In multi-step
    research it is next due when the first of its running responses is, the one just started
    or one beside it: read under the job's lock, so that a wake that came meanwhile stands,
    and not while another step waits for its retry (that wait stands too)."""
    with transaction.atomic():
        locked = services.job_lock(job.pk)
        if locked is None or locked.status != JobStatus.RUNNING or locked.current_attempt_id != attempt.pk:
            return False
        check_in = None
        if job.run_template.mode == TemplateMode.MULTI_STEP and not attempt_awaits_retry(attempt_id=attempt.pk):
            check_in = research_check_in(attempt=attempt)
        next_check_at = timezone.now() + dt.timedelta(seconds=first_check if check_in is None else check_in)
        if check_in is None and locked.next_check_at and locked.next_check_at > next_check_at:
            next_check_at = locked.next_check_at  # the wait another step is under stands
        ReportJob.objects.filter(pk=job.pk).update(provider_response_id=response_id, next_check_at=next_check_at)
    return True


def _duplicate_record(*, call: ProviderCall, state: ResponseState, provider: Provider) -> None:
    """Keep a trace of a response nobody will follow, and cancel it."""
    duplicate = ProviderCall.objects.create(
        job_id=call.job_id, attempt_id=call.attempt_id, step=call.step, provider=call.provider, model=state.model or call.model,
        previous_response_id=call.previous_response_id, request_summary=call.request_summary,
        provider_response_id=state.id, status=state.status or QUEUED, orphan=True,
    )
    events.provider_orphan_found(
        job=call.job, call_id=duplicate.pk, response_id=state.id, status=state.status, kept=False, canceled=state.id,
    )
    response_cancel(response_id=state.id, provider=provider)


def _provider_error(*, job: ReportJob, attempt: JobAttempt, error: ProviderError) -> None:
    """A transient error is retried automatically, a bounded number of times with backoff;
    anything else, or the last transient one, fails the job. A chained request whose previous
    response is gone is sent again at once, unchained, with what the chain carried as input.
    A quota or credential failure holds the job instead (the breaker opens for every job), and
    a rate limit makes every job wait, not just this one."""
    if is_breaker_error(error):
        breaker_trip(error=error)
        job_hold(job_id=job.pk, until=timezone.now() + dt.timedelta(seconds=settings.BREAKER_PROBE_SECONDS))
        return
    if is_shared_rate_limit(error):
        backoff_share(seconds=error.retry_after or settings.PROVIDER_RETRY_BASE_SECONDS)
    if error.code == PREVIOUS_RESPONSE_NOT_FOUND and _chain_lost_once(attempt):
        with transaction.atomic():
            locked = services.job_lock(job.pk)
            if locked is None or not still_ours(locked, attempt=attempt, statuses=ACTIVE_STATUSES):
                return
            lost = ProviderCall.objects.filter(attempt=attempt, error_code=PREVIOUS_RESPONSE_NOT_FOUND).first()
            events.provider_chain_lost(job=locked, response_id=lost.previous_response_id)
            _schedule(job.pk, seconds=0)
        return
    if error.transient and attempt.provider_retries < settings.PROVIDER_MAX_AUTO_RETRIES:
        retries = attempt.provider_retries + 1
        delay = settings.PROVIDER_RETRY_BASE_SECONDS * 2 ** (retries - 1)
        if error.retry_after:
            delay = max(delay, error.retry_after)
        with transaction.atomic():
            locked = services.job_lock(job.pk)
            if locked is None or not still_ours(locked, attempt=attempt, statuses=ACTIVE_STATUSES):
                return  # canceled or moved on meanwhile: nothing to retry
            JobAttempt.objects.filter(pk=attempt.pk).update(provider_retries=retries, last_error=error.message)
            ReportJob.objects.filter(pk=job.pk).update(retries=F("retries") + 1)
            _schedule(job.pk, seconds=delay)
            events.provider_retry_scheduled(
                job=locked, reason=error.message,
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


def _chain_lost_once(attempt: JobAttempt) -> bool:
    """The first lost chain of the attempt is resent; another (which an unchained request
    cannot cause) fails the job like any other error."""
    return ProviderCall.objects.filter(attempt=attempt, error_code=PREVIOUS_RESPONSE_NOT_FOUND).count() == 1


def response_cancel(*, response_id: str, provider: Provider | None = None) -> None:
    """Cancel a response at the provider, best effort: the product has already stopped the job
    (or never needed this response). What fails transiently is tried again by the orphan
    sweep; a permanent refusal is recorded so the sweep stops asking."""
    provider = provider or get_provider()
    try:
        state = provider.cancel(response_id)
    except ProviderError as exc:
        log.warning("cancel of %s failed: %s", response_id, exc.message)
        if not exc.transient:
            ProviderCall.objects.filter(provider_response_id=response_id).update(status=CallStatus.CANCEL_FAILED, error_message=exc.message)
        return
    call = ProviderCall.objects.filter(provider_response_id=response_id).first()
    if call is None:
        return
    if state.is_terminal:
        # Canceled or raced to the end: what it consumed until then is billed all the same.
        _record_call_state(call=call, state=state)
    else:
        ProviderCall.objects.filter(pk=call.pk).update(status=state.status or CANCELLED)


def _steps_start(*, job: ReportJob, attempt: JobAttempt, provider: Provider, token: str) -> None:
    """Start the next step; for multi-step research, every step that can run now beside those
    in flight (the questions run side by side). Nothing when every step is in flight."""
    if job.run_template.mode != TemplateMode.MULTI_STEP:
        _call_create(job=job, attempt=attempt, provider=provider, token=token)
        return
    for _ in range(MAX_RESEARCH_QUESTIONS + 2):
        if not research_startable(job=job, attempt=attempt):
            return
        if not _call_create(job=job, attempt=attempt, provider=provider, token=token):
            # The create failed (its retry or its reconcile waits: nothing more starts before
            # it), the job failed (a budget), or it was canceled.
            return


def job_check(*, job: ReportJob, provider: Provider, token: str, again: bool = False) -> None:
    """Poll the running response once and act on what it says. If its webhook came while we
    were asking, ask once more at once (`again`): the answer we got may predate it."""
    attempt = job.current_attempt
    latest = call_to_follow(job=job, attempt=attempt)
    if latest is None or latest.status in (CallStatus.ERROR, FAILED) or (latest.status == COMPLETED and not call_is_final(latest)):
        # A retry after a failed response, or the next research step (its predecessor ended
        # but the worker stopped before creating it): start it, unless a backoff is in force.
        if not _waiting(job):
            _steps_start(job=job, attempt=attempt, provider=provider, token=token)
        return
    if not latest.provider_response_id:
        if _call_lost(job=job, attempt=attempt, call=latest, provider=provider):
            _steps_start(job=job, attempt=attempt, provider=provider, token=token)
        return
    call = latest
    # A provider that answers from a retrieve made earlier (a batch's) says when it asked.
    asked_at = timezone.now()
    try:
        state = provider.retrieve(call.provider_response_id)
    except ProviderError as exc:
        asked_at = getattr(provider, "asked_at", None) or asked_at
        ProviderCall.objects.filter(pk=call.pk).update(polls=call.polls + 1, last_checked_at=asked_at, error_code=exc.code[:100], error_message=exc.message)
        if is_breaker_error(exc):
            breaker_trip(error=exc)
            job_hold(job_id=job.pk, until=timezone.now() + dt.timedelta(seconds=settings.BREAKER_PROBE_SECONDS))
        elif exc.transient and not _past_runtime(job, attempt):
            # Back on the grid; a job woken while we asked (or held) is left as it is.
            seconds = max(_check_in(job=job, attempt=attempt, call=call), exc.retry_after or 0)
            ReportJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES, next_check_at__lte=asked_at).update(
                next_check_at=timezone.now() + dt.timedelta(seconds=seconds)
            )
        elif exc.transient:
            services.job_fail(job=job, failure_class=FailureClass.TIMEOUT, attempt=attempt,
                              message=f"The provider could not be reached within the template's limit of {job.template.max_runtime_minutes} minutes.")
        else:
            services.job_fail(job=job, failure_class=exc.failure_class, message=exc.message, details={"code": exc.code}, attempt=attempt)
        return
    asked_at = getattr(provider, "asked_at", None) or asked_at
    call.polls += 1
    _record_call_state(call=call, state=state, checked_at=asked_at)
    if state.status in PROVIDER_ACTIVE or not state.status:
        if _past_runtime(job, attempt):
            response_cancel(response_id=call.provider_response_id, provider=provider)
            services.job_fail(
                job=job, failure_class=FailureClass.TIMEOUT, attempt=attempt,
                message=f"Still running after the template's limit of {job.template.max_runtime_minutes} minutes; canceled at the provider.",
            )
        elif not _schedule_after_poll(job.pk, seconds=_check_in(job=job, attempt=attempt, call=call), asked_at=asked_at, again=again):
            # A batch's answer was asked for before the webhook: this time, ask the provider itself.
            job_check(job=job, provider=getattr(provider, "direct", provider), token=token, again=True)
        return
    ReportJob.objects.filter(pk=job.pk).update(last_checked_at=timezone.now())
    if state.refusal and state.status in (COMPLETED, INCOMPLETE):
        # A structured-output refusal: the model declined under its usage policy.
        services.job_fail(
            job=job, failure_class=FailureClass.POLICY_BLOCK, attempt=attempt,
            message=f"The model refused to write this report: {state.refusal}", details={"refusal": state.refusal[:2000]},
        )
    elif state.status == COMPLETED and not call_is_final(call):
        _steps_start(job=job, attempt=attempt, provider=provider, token=token)
        _research_reschedule(job=job, attempt=attempt)
    elif state.status == COMPLETED:
        result_store(job=job, attempt=attempt, state=state, token=token)
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


def _check_in(*, job: ReportJob, attempt: JobAttempt, call: ProviderCall) -> float:
    """Seconds until the next check, after a poll found `call` still running: on its grid, or
    in multi-step research on the grid of whichever running response is due first."""
    if job.run_template.mode == TemplateMode.MULTI_STEP:
        check_in = research_check_in(attempt=attempt)
        if check_in is not None:
            return check_in
    return poll_delay(age=_response_age(call), watched=call.watched)


def _research_reschedule(*, job: ReportJob, attempt: JobAttempt) -> None:
    """After a research step ended: the job is next due when the first of the responses still
    running is (whether or not the end let another step start). Under the job's lock, so that
    a wake that came meanwhile stands; and not while a step waits for its automatic retry:
    that wait stands too."""
    with transaction.atomic():
        locked = services.job_lock(job.pk)
        if locked is None or not still_ours(locked, attempt=attempt, statuses=(JobStatus.RUNNING,)):
            return
        if attempt_awaits_retry(attempt_id=attempt.pk):
            return
        check_in = research_check_in(attempt=attempt)
        if check_in is not None:
            ReportJob.objects.filter(pk=job.pk).update(next_check_at=timezone.now() + dt.timedelta(seconds=check_in))


def _schedule_after_poll(job_id: int, *, seconds: float, asked_at, again: bool = False) -> bool:
    """The next check after a poll that found the response still running. False when a
    webhook came while we were asking (it made the job due after `asked_at`): our answer may
    be stale, and the caller asks again at once. A second stale answer in a row (`again`) is
    looked at in a second. A job held meanwhile, or no longer running, is left as it is."""
    now = timezone.now()
    scheduled = ReportJob.objects.filter(pk=job_id, status__in=ACTIVE_STATUSES, next_check_at__lte=asked_at).update(
        next_check_at=now + dt.timedelta(seconds=seconds), last_checked_at=now
    )
    if scheduled:
        return True
    woken = ReportJob.objects.filter(
        pk=job_id, status=JobStatus.RUNNING, next_check_at__gt=asked_at, next_check_at__lte=now
    ).exists()  # not a hold (due later) nor a job that left running meanwhile
    if woken and again:
        # In a second, not now: a job left due by its own step is pushed a minute on when the
        # lease is given back (job_lease_release).
        _schedule(job_id, seconds=1.0, checked=True)
    return not woken or again


def _ended_at(state: ResponseState) -> dt.datetime:
    """When the response ended: the provider's own time when it gives one (a completed
    response), else now, when we learnt it. Never later than now, whatever the clocks say."""
    now = timezone.now()
    return min(state.completed_at, now) if state.completed_at else now


def _record_call_state(*, call: ProviderCall, state: ResponseState, checked_at: dt.datetime | None = None) -> None:
    """Keep what the provider said of the call's response; `checked_at`: when it was asked (an
    announcement of its end that came later is still to be looked at)."""
    updates = {
        "status": state.status or call.status,
        "polls": call.polls,
        "last_checked_at": checked_at or timezone.now(),
        "error_code": state.error_code[:100],
        "error_message": state.error_message,
    }
    if state.is_terminal:
        updates.update(call_usage_fields(call=call, state=state), completed_at=call.completed_at or _ended_at(state))
        updates["output"] = {
            "text": state.output_text,
            "function_calls": [
                {"call_id": fc.call_id, "name": fc.name, "arguments": fc.arguments} for fc in state.function_calls
            ],
            "url_citations": list(state.url_citations),
            "web_sources": list(state.web_sources),
        }
    ProviderCall.objects.filter(pk=call.pk).update(**updates)
    if state.is_terminal:
        job_usage_totals(job_id=call.job_id)


def result_store(*, job: ReportJob, attempt: JobAttempt, state: ResponseState, token: str | None = None) -> None:
    """Store the draft's artifacts and move the job on. Written once per attempt: running it
    twice changes nothing, and a job that is no longer running on this attempt is left alone.
    With web search on, the web pages the draft cites are fetched first (see web_pages)."""
    try:
        report = parse_report_json(state.output_text)
    except ReportFormatError as exc:
        services.job_fail(
            job=job, failure_class=FailureClass.PROVIDER_ERROR,
            message=f"The model's answer was not a valid structured report: {exc}",
        )
        return
    markdown = report_to_markdown(report)

    entries = {e.sid: e.item for e in manifest_entries(manifest_id=attempt.manifest_id)}
    citations = [
        {"source_id": sid, "in_manifest": sid in entries,
         "title": entries[sid].title if sid in entries else "", "url": entries[sid].url if sid in entries else ""}
        for sid in cited_source_ids(report)
    ]
    web_rows = web_citations(report)
    if web_rows and job.run_template.web_search:
        web_pages_fetch(job=job, attempt=attempt, report=report, token=token)
    returned = {url_key(url) for url in attempt_search_urls(attempt=attempt)} if web_rows else set()
    citations += [
        {"url": row["url"], "title": row["title"], "web": True, "returned_by_search": url_key(row["url"]) in returned}
        for row in web_rows
    ]
    evidence = report.get("evidence") if isinstance(report.get("evidence"), list) else []
    evidence = evidence + [
        {"claim": row["claim"], "source_id": "", "url": row["url"], "title": row["title"], "quote": row["quote"]}
        for row in web_rows
    ]
    contents = {
        ArtifactKind.REPORT_MARKDOWN: markdown,
        ArtifactKind.STRUCTURED_JSON: json.dumps(report, ensure_ascii=False, indent=2),
        ArtifactKind.CITATIONS: json.dumps(citations, ensure_ascii=False),
        ArtifactKind.EVIDENCE: json.dumps(evidence, ensure_ascii=False),
        ArtifactKind.SOURCE_NOTES: json.dumps(report.get("source_notes", []) if isinstance(report.get("source_notes"), list) else [], ensure_ascii=False),
        ArtifactKind.RENDERED_HTML: render_html(markdown),
    }
    services.job_finish(job=job, attempt=attempt, artifacts=contents, offline=state.model == LOCAL_MODEL)
