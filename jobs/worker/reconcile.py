"""Creates that never answered: make sure every response the provider may have started is
known, and that none runs (and bills) unseen.

A create that times out, loses its connection or whose worker dies may still have started a
background response, and the provider has no way to list responses or to make a create
idempotent. So the call's intent is recorded before the create (with the job, attempt and
step, which the response carries in its `metadata`), and when no answer comes:

1. the call is marked **unconfirmed** and no new create goes out for CREATE_RECONCILE_SECONDS
   after it was sent;
2. meanwhile, a provider webhook naming a response we do not know is matched by its metadata
   (`response_match`): a response that answers the unconfirmed call is **adopted**, and the
   job follows it as if the create had answered;
3. once the window is over, the deliveries still waiting are looked at again, and if none
   answers the call it is marked **lost** and the create is made again (one of the attempt's
   automatic retries);
4. a response that turns up later for a lost call is an **orphan**: canceled at the provider
   while live, shown on the job page, its usage counted in the job's cost. If it completed
   while the job's newer response for the same step is still running, the finished one is
   kept and the newer one canceled instead: the same request, already paid for.

Without webhooks an orphan cannot be seen at all; docs/operations.md says what bounds it.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from reportdesk.jsonlimits import text_problem

from .. import events, queue, services
from ..models import ACTIVE_STATUSES, CallStatus, JobAttempt, JobStatus, ProviderCall, ReportJob, WebhookDelivery
from ..providers import get_provider
from ..providers.base import COMPLETED, Provider, ProviderError, ResponseState
from .usage import call_usage_fields, job_usage_totals

log = logging.getLogger(__name__)

# ProviderError codes of a create whose request may have reached the provider: the SDK gave
# up waiting, or the connection broke, so nobody knows whether a response was started.
AMBIGUOUS_CREATE_CODES = frozenset({"timeout", "connection_error"})

# How long a webhook for an unknown response is worth matching (the provider retries for
# days; a create is reconciled within minutes).
MATCH_WITHIN = dt.timedelta(days=3)


def create_ambiguous(error: ProviderError) -> bool:
    return error.code in AMBIGUOUS_CREATE_CODES


def reconcile_deadline(call: ProviderCall) -> dt.datetime:
    return call.created_at + dt.timedelta(seconds=settings.CREATE_RECONCILE_SECONDS)


def call_unconfirmed(*, job: ReportJob, call: ProviderCall, reason: str, gave_up_at=None) -> None:
    """The create got no answer: hold every new create for this step until the window is
    over, and look at the job again then. A create this worker just gave up on (`gave_up_at`:
    it timed out, perhaps after longer than the window) gets the whole window from then, for
    a webhook to name the response it may have started."""
    until = reconcile_deadline(call)
    if gave_up_at is not None:
        until = max(until, gave_up_at + dt.timedelta(seconds=settings.CREATE_RECONCILE_SECONDS))
    with transaction.atomic():
        marked = ProviderCall.objects.filter(pk=call.pk, status=CallStatus.PENDING, provider_response_id=None).update(
            status=CallStatus.UNCONFIRMED, error_message=reason[:2000]
        )
        if not marked:
            return
        ReportJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(next_check_at=max(until, timezone.now()))
        events.provider_call_unconfirmed(job=job, call_id=call.pk, reason=reason, until=until)


def call_reconcile(*, job: ReportJob, attempt: JobAttempt, call: ProviderCall, provider: Provider) -> bool:
    """A call without a response id, met by the worker holding the job's lease (so whoever
    made the call is gone). True if a new create may go ahead now."""
    if call.status == CallStatus.PENDING:
        call_unconfirmed(job=job, call=call, reason="The worker stopped before the provider answered the create.")
    if timezone.now() < reconcile_deadline(call):
        ReportJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(next_check_at=reconcile_deadline(call))
        return False
    # Look again: a delivery may have come while no worker could match it (a broker outage).
    for response_id in deliveries_to_match(since=call.created_at):
        response_match(response_id=response_id, provider=provider)
    call.refresh_from_db()
    if call.provider_response_id:
        return False  # adopted: the job follows it from its next step
    lost = ProviderCall.objects.filter(pk=call.pk, status=CallStatus.UNCONFIRMED, provider_response_id=None).update(
        status=CallStatus.LOST,
        error_message=f"No answer to the create and no sign of a response within {settings.CREATE_RECONCILE_SECONDS:g} s.",
    )
    if not lost:
        return False
    JobAttempt.objects.filter(pk=attempt.pk).update(provider_retries=F("provider_retries") + 1)
    attempt.refresh_from_db(fields=["provider_retries"])
    events.provider_call_lost(job=job, call_id=call.pk, retry=attempt.provider_retries)
    if attempt.provider_retries > settings.PROVIDER_MAX_AUTO_RETRIES:
        services.job_fail(
            job=job, failure_class="provider_error", attempt=attempt,
            message=f"The provider call went unanswered {attempt.provider_retries} times.",
        )
        return False
    return True


def deliveries_to_match(*, since: dt.datetime | None = None) -> list[str]:
    """Response ids named by webhooks that no call of ours has, still to be matched."""
    deliveries = WebhookDelivery.objects.filter(needs_match=True, received_at__gte=timezone.now() - MATCH_WITHIN)
    if since is not None:
        deliveries = deliveries.filter(received_at__gte=since)
    return list(dict.fromkeys(deliveries.order_by("received_at").values_list("response_id", flat=True)))


def response_match(*, response_id: str, provider: Provider | None = None) -> str:
    """A webhook named a response none of our calls has: read its metadata and attach it to
    the create it answers. Returns what happened: "known", "not_ours", "adopted", "kept",
    "orphan", "later" (its call is still being created, or the provider could not say)."""
    if ProviderCall.objects.filter(provider_response_id=response_id).exists():
        _matched(response_id)
        return "known"
    provider = provider or get_provider()
    try:
        state = provider.retrieve(response_id)
    except ProviderError as exc:
        if exc.transient:
            return "later"
        _matched(response_id)
        return "not_ours"
    ours = _our_metadata(state.raw.get("metadata"))
    job = ReportJob.objects.filter(public_id=ours[0]).first() if ours else None
    if job is None:
        _matched(response_id)
        return "not_ours"
    _, attempt_number, step = ours
    with transaction.atomic():
        job = services.job_lock(job.pk)
        if ProviderCall.objects.filter(provider_response_id=response_id).exists():
            outcome = "known"
        else:
            candidates = ProviderCall.objects.filter(
                job=job, attempt__number=attempt_number, step=step,
                provider_response_id=None, status__in=CallStatus.UNANSWERED,
            ).select_related("attempt")
            call = candidates.order_by("id").first()
            if call is None:
                outcome = "not_ours"
            elif call.status == CallStatus.PENDING:
                return "later"  # its create is still in flight: that worker records the id
            elif call.status == CallStatus.UNCONFIRMED:
                outcome = _adopt(job=job, call=call, state=state)
            else:
                outcome = _found_after_lost(job=job, call=call, state=state)
        _matched(response_id)
    return outcome


def _our_metadata(metadata) -> tuple[str, int, str] | None:
    """(job public id, attempt number, step) from a response's metadata, if it is shaped
    like ours (jobs.providers.openai_provider.request_metadata); None otherwise."""
    if not isinstance(metadata, dict):
        return None
    job_id, attempt, step = (metadata.get(key) for key in ("job_id", "attempt", "step"))
    if not all(isinstance(value, str) and value and len(value) <= 64 for value in (job_id, attempt, step)):
        return None
    if not (attempt.isascii() and attempt.isdigit()) or not job_id.isalnum() or not job_id.isascii() or text_problem(step):
        return None
    return job_id, int(attempt), step


def _matched(response_id: str) -> None:
    WebhookDelivery.objects.filter(response_id=response_id, needs_match=True).update(needs_match=False)


def _adopt(*, job: ReportJob, call: ProviderCall, state: ResponseState) -> str:
    """The unconfirmed create did start this response: the call has its id, and the job
    follows it from its next step."""
    ProviderCall.objects.filter(pk=call.pk).update(
        provider_response_id=state.id, status=state.status or CallStatus.QUEUED, model=state.model or call.model, error_message=""
    )
    _follow(job=job, call=call, response_id=state.id)
    events.provider_call_reconciled(job=job, call_id=call.pk, response_id=state.id, status=state.status)
    return "adopted"


def _found_after_lost(*, job: ReportJob, call: ProviderCall, state: ResponseState) -> str:
    """A response for a create given up as lost: a duplicate. Keep it instead of the newer
    one only when it has the answer and the newer one is still running; cancel whichever is
    not kept while it may be running."""
    newer = (
        ProviderCall.objects.filter(attempt_id=call.attempt_id, step=call.step, orphan=False, id__gt=call.pk)
        .exclude(status__in=[CallStatus.LOST, CallStatus.UNCONFIRMED])
        .order_by("-id")
        .first()
    )
    keep_found = (
        state.status == COMPLETED
        and job.status in (JobStatus.PREPARING, JobStatus.RUNNING)
        and job.current_attempt_id == call.attempt_id
        and newer is not None
        and newer.provider_response_id
        and newer.status in CallStatus.LIVE
    )
    ProviderCall.objects.filter(pk=call.pk).update(
        provider_response_id=state.id, status=state.status or CallStatus.QUEUED, orphan=not keep_found,
        model=state.model or call.model,
    )
    if keep_found:
        ProviderCall.objects.filter(pk=newer.pk).update(orphan=True)
        _follow(job=job, call=call, response_id=state.id)
        canceled = newer.provider_response_id
        outcome = "kept"
    else:
        canceled = state.id if state.status in CallStatus.LIVE or not state.status else None
        if state.is_terminal:
            _orphan_usage(job=job, call=call, state=state)
        outcome = "orphan"
    if canceled:
        queue.enqueue_on_commit(queue.enqueue_provider_cancel, canceled)
    events.provider_orphan_found(
        job=job, call_id=call.pk, response_id=state.id, status=state.status, kept=keep_found, canceled=canceled
    )
    return outcome


def _orphan_usage(*, job: ReportJob, call: ProviderCall, state: ResponseState) -> None:
    """An orphan that already ended was billed: its usage goes on the call and the job."""
    ProviderCall.objects.filter(pk=call.pk).update(**call_usage_fields(call=call, state=state), completed_at=timezone.now())
    job_usage_totals(job_id=job.pk)


def _follow(*, job: ReportJob, call: ProviderCall, response_id: str) -> None:
    """Make the job look at its response now (the worker's next step polls or stores it)."""
    updates: dict = {"next_check_at": timezone.now()}
    if job.status == JobStatus.RUNNING and job.current_attempt_id == call.attempt_id:
        updates["provider_response_id"] = response_id
    ReportJob.objects.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(**updates)
    services.job_advance_on_commit(job)
