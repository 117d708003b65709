"""The job lifecycle: every state change of a ReportJob goes through a function here.

Each transition locks the job row (`select_for_update` inside `transaction.atomic`; on
SQLite the IMMEDIATE transaction mode serialises writers the same way), checks the current
state, writes the change and its JobEvent in the same transaction, and schedules side
effects (worker tasks, provider cancels) with `transaction.on_commit`.

People act through `actor=<user>`; the worker, webhooks and the scheduler act as
`actor=Actor.system(...)`. A person's request is checked against jobs.policy: a role that
lacks the action is PermissionDenied, a state that does not allow it is InvalidTransition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from reportdesk.errors import InvalidTransition, NotRetryable, PermissionDenied, ValidationFailed
from reportdesk.models import Workspace
from sources.models import SourceManifest
from sources.selectors import manifest_entries
from sources.services import (
    RecordSource,
    SourceSpec,
    manifest_create,
    manifest_refreshed,
    sources_from_specs,
    uploads_discarded_on_error,
)

from . import policy, queue, selectors
from .budgets import budget_check_submit
from .events import WEBHOOK, WORKER, Actor, event_record, provider_notified, report_exported, rerun_started
from .models import (
    ACTIVE_STATUSES,
    ArtifactKind,
    Artifact,
    AttemptReason,
    CallStatus,
    AttemptStatus,
    RETRYABLE_FAILURES,
    EventAction,
    FailureClass,
    IdempotencyKey,
    JobAttempt,
    JobStatus,
    ProviderCall,
    ReportJob,
    ReportTemplate,
    ReviewState,
)


def job_lock(job_id: int) -> ReportJob | None:
    """Lock a job's row for the rest of the transaction (None if it is gone).

    of=("self",): lock the job row only; without it PostgreSQL also locks the template row,
    and every job of that template would wait on this one."""
    return (
        ReportJob.objects.select_for_update(of=("self",))
        .select_related("template", "workspace", "current_attempt")
        .filter(pk=job_id)
        .first()
    )


def _lock(job: ReportJob) -> ReportJob:
    locked = job_lock(job.pk)
    if locked is None:
        raise ReportJob.DoesNotExist(f"Job {job.pk} no longer exists.")
    return locked


def _authorize(job: ReportJob, actor: Actor, action: str) -> None:
    """Refuse a person's action: 403 if their role lacks it (whatever the state), else 409 if
    the state does not allow it, naming only what they may do now."""
    if actor.is_user:
        if action in policy.allowed_actions(job, actor.user):
            return
        _authorize_role(job, actor, action)
        _refuse(job, action, user=actor.user)
    elif action not in policy.state_actions(job):
        _refuse(job, action)


def _authorize_role(job: ReportJob, actor: Actor, action: str) -> None:
    """403 if a person's role lacks the action, before an idempotent no-op answers them."""
    if actor.is_user and (refusal := policy.role_refusal(job, actor.user, action)) is not None:
        raise PermissionDenied(refusal)


def _refuse(job: ReportJob, action: str, *, user=None):
    message = policy.state_refusal(job, action, user=user)
    if action == policy.RETRY and job.status == JobStatus.FAILED:
        raise NotRetryable(message)
    raise InvalidTransition(message)


def _change(
    job: ReportJob,
    *,
    actor,
    action: str,
    status: str | None = None,
    review_state: str | None = None,
    reason: str = "",
    details: dict | None = None,
    **fields,
) -> ReportJob:
    """Apply a change to a locked job and write its event. Returns the job."""
    from_status, from_review = job.status, job.review_state
    if status is not None:
        job.status = status
    if review_state is not None:
        job.review_state = review_state
    for name, value in fields.items():
        setattr(job, name, value)
    job.save()
    event_record(
        job=job,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=job.status,
        from_review_state=from_review,
        to_review_state=job.review_state,
        reason=reason,
        details=details,
    )
    return job


def job_advance_on_commit(job: ReportJob) -> None:
    """Ask a worker to move the job on, once the current transaction commits. The job is due
    already (its next_check_at), so if the broker is down the dispatcher takes it later."""
    queue.enqueue_on_commit(queue.enqueue_job_advance, job.pk)


def job_wake(*, call: ProviderCall, details: dict, actor=WEBHOOK) -> bool:
    """The provider says a response ended (its webhook, or its own event stream): make the
    job due now and hand it to a worker, which reads the response and acts on it. Changes no
    state by itself, so a false signal costs one poll. A live response of the job's current
    attempt wakes it: the latest, or in multi-step research any question running beside it,
    marked so that the check looks at it first. An event for an earlier attempt, for an
    orphan, or for a response that already failed does not cut a backoff short; nor does any
    event while a step of the attempt waits for its automatic retry (or for the reconcile of
    a create), though the response is still marked, to be looked at first once the wait is
    over. Returns whether the job was woken."""
    if call.status not in CallStatus.LIVE or call.orphan:
        return False
    with transaction.atomic():
        # Under the job's lock: a failure recorded meanwhile (and its retry wait) is seen.
        job = job_lock(call.job_id)
        if job is None or job.status != JobStatus.RUNNING or job.current_attempt_id != call.attempt_id:
            return False
        now = timezone.now()
        ProviderCall.objects.filter(pk=call.pk).update(notified_at=now)
        if selectors.attempt_awaits_retry(attempt_id=call.attempt_id):
            return False
        ReportJob.objects.filter(pk=job.pk).update(next_check_at=now)
        provider_notified(job=job, details=details, actor=actor)
        job_advance_on_commit(job)
    return True


def _cancel_live_responses_on_commit(job: ReportJob) -> None:
    """After commit, cancel every response of the job that may still be running at the
    provider (in multi-step research, or a create that was in flight, there can be more than
    the current one)."""
    for response_id in ProviderCall.objects.filter(job=job).live().values_list("provider_response_id", flat=True):
        # Should the broker be down, the orphan sweep cancels what stays live.
        queue.enqueue_on_commit(queue.enqueue_provider_cancel, response_id)


def _new_attempt(
    job: ReportJob, *, reason: str, actor: Actor, manifest: SourceManifest, instructions: str = "", first: bool = False
) -> JobAttempt:
    """The job's next attempt (`first`: a job just created, which has none to count)."""
    number = 1 if first else (job.attempts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    return JobAttempt.objects.create(
        job=job,
        number=number,
        reason=reason,
        instructions=instructions,
        manifest=manifest,
        created_by=actor.user,
    )


def _close_attempt(job: ReportJob, *, status: str, error: str = "") -> None:
    if job.current_attempt_id:
        JobAttempt.objects.filter(
            pk=job.current_attempt_id, status__in=[AttemptStatus.PENDING, AttemptStatus.RUNNING]
        ).update(status=status, finished_at=timezone.now(), last_error=error)


def _initial_review_state(template: ReportTemplate) -> str:
    return ReviewState.PENDING if template.review_required else ReviewState.NOT_REQUIRED


def _summary(*, template: ReportTemplate, topic: str, audience: str, source_count: int) -> str:
    """A support-safe one-liner: what was asked, not the sources' content."""
    text = f"{template.name} on “{topic}”"
    if audience:
        text += f" for {audience}"
    return f"{text}; {source_count} source{'s' if source_count != 1 else ''}."[:1000]


def _clean_request(*, topic: str, audience: str, deadline) -> tuple[str, str]:
    topic = (topic or "").strip()
    audience = (audience or "").strip()
    errors = {}
    if not topic:
        errors["topic"] = "Give the report a topic."
    elif len(topic) > 500:
        errors["topic"] = "Keep the topic under 500 characters."
    if len(audience) > 300:
        errors["audience"] = "Keep the audience under 300 characters."
    if deadline is not None and deadline <= timezone.now():
        errors["deadline"] = "The deadline must be in the future."
    if errors:
        raise ValidationFailed(next(iter(errors.values())), fields=errors)
    return topic, audience


def job_as_record_source(*, workspace: Workspace, public_id: str) -> RecordSource:
    """An earlier report of the workspace, as the sources app quotes it (an internal record)."""
    job = ReportJob.objects.filter(public_id=public_id, workspace=workspace).first()
    if job is None:
        raise ValidationFailed(f"Report {public_id} does not exist in this workspace.", fields={"record": "Unknown report."})
    if job.status != JobStatus.COMPLETED:
        raise ValidationFailed(f"Report {job.public_id} is not completed, so it cannot be used as a source.")
    return RecordSource(
        job_id=job.pk,
        title=f"Report {job.public_id}: {job.topic}",
        text=selectors.report_markdown(job=job),
        published=(job.finished_at or job.created_at).date(),
    )


# --- Submit and edit ---------------------------------------------------------------------


def job_submit(
    *,
    workspace: Workspace,
    requested_by,
    template: ReportTemplate,
    topic: str,
    audience: str = "",
    sources: list[SourceSpec] = (),
    deadline: dt.datetime | None = None,
    rerun_of: ReportJob | None = None,
    manifest: SourceManifest | None = None,
) -> ReportJob:
    """Create the job, its manifest and its first attempt; preparation starts on commit.

    A submit is the API's busiest write, so it reads nothing the inserts already know: the
    source count is the manifest it builds, the attempt is number 1."""
    policy.check_submit(requested_by, workspace)
    if not template.is_active:
        raise ValidationFailed(f"Template {template.slug} is retired.", fields={"template": "Inactive template."})
    topic, audience = _clean_request(topic=topic, audience=audience, deadline=deadline)
    with uploads_discarded_on_error(), transaction.atomic():
        if manifest is None:
            items = sources_from_specs(workspace=workspace, created_by=requested_by, specs=list(sources), record=job_as_record_source)
            if not items and not template.web_search:
                raise ValidationFailed(
                    "Add at least one source: this template does not search the web.",
                    fields={"sources": "At least one source is required."},
                )
            manifest = manifest_create(workspace=workspace, items=items)
            unique = list(dict.fromkeys(items))  # manifest_create keeps each item once
            source_count, source_chars = len(unique), sum(len(item.text) for item in unique)
        else:
            entries = manifest_entries(manifest_id=manifest.pk)
            source_count, source_chars = len(entries), sum(len(e.item.text) for e in entries)
        budget_check_submit(workspace=workspace, template=template, source_chars=source_chars)
        now = timezone.now()
        job = ReportJob.objects.create(
            workspace=workspace,
            requested_by=requested_by,
            template=template,
            topic=topic,
            audience=audience,
            input_summary=_summary(template=template, topic=topic, audience=audience, source_count=source_count),
            source_manifest=manifest,
            rerun_of=rerun_of,
            review_state=_initial_review_state(template),
            deadline=deadline or now + dt.timedelta(hours=template.useful_window_hours),
            next_check_at=now,
        )
        attempt = _new_attempt(job, reason=AttemptReason.INITIAL, actor=Actor.of(requested_by), manifest=manifest, first=True)
        job.current_attempt = attempt
        job.save(update_fields=["current_attempt"])
        event_record(
            job=job,
            actor=requested_by,
            action=EventAction.SUBMITTED,
            to_status=JobStatus.QUEUED,
            to_review_state=job.review_state,
            details={"template": template.slug, "sources": source_count, "rerun_of": rerun_of.public_id if rerun_of else None},
        )
        job_advance_on_commit(job)
    return job


def job_submit_idempotent(*, key: str, body: dict, **submit_kwargs) -> tuple[ReportJob, bool]:
    """`job_submit` keyed by the caller's Idempotency-Key: the same key and body return the
    same job (created=False); the same key with another body is refused."""
    user = submit_kwargs["requested_by"]
    request_hash = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def existing() -> ReportJob | None:
        record = IdempotencyKey.objects.select_related("job").filter(user=user, key=key).first()
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise ValidationFailed(
                "This Idempotency-Key was already used with a different request body. "
                "Use a new key for a new report.",
                fields={"Idempotency-Key": "Reused with another body."},
            )
        return record.job

    if (job := existing()) is not None:
        return job, False
    try:
        with transaction.atomic():
            job = job_submit(**submit_kwargs)
            IdempotencyKey.objects.create(user=user, key=key, request_hash=request_hash, job=job)
    except IntegrityError:
        # A concurrent submit with the same key won the race; its job is the answer.
        if (job := existing()) is not None:
            return job, False
        raise
    return job, True


def job_edit(
    *,
    job: ReportJob,
    actor,
    topic: str | None = None,
    audience: str | None = None,
    sources: list[SourceSpec] | None = None,
    deadline: dt.datetime | None = None,
) -> ReportJob:
    """Change the request while it is queued or preparing and the provider call has not begun."""
    actor = Actor.of(actor)
    with uploads_discarded_on_error(), transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.EDIT)
        new_topic, new_audience = _clean_request(
            topic=job.topic if topic is None else topic,
            audience=job.audience if audience is None else audience,
            deadline=deadline,
        )
        changes: dict[str, Any] = {}
        changed = []
        if new_topic != job.topic:
            changes["topic"] = new_topic
            changed.append("topic")
        if new_audience != job.audience:
            changes["audience"] = new_audience
            changed.append("audience")
        if deadline is not None and deadline != job.deadline:
            changes["deadline"] = deadline
            changed.append("deadline")
        manifest = job.source_manifest
        if sources is not None:
            items = sources_from_specs(workspace=job.workspace, created_by=actor.user, specs=sources, record=job_as_record_source)
            if not items and not job.run_template.web_search:
                raise ValidationFailed("Add at least one source.", fields={"sources": "At least one source is required."})
            # The new sources are held to the budgets as a submit's are.
            unique = list(dict.fromkeys(items))
            budget_check_submit(workspace=job.workspace, template=job.template, source_chars=sum(len(i.text) for i in unique))
            manifest = manifest_create(workspace=job.workspace, items=items)
            changes["source_manifest"] = manifest
            JobAttempt.objects.filter(pk=job.current_attempt_id).update(manifest=manifest)
            changed.append("sources")
        if not changed:
            return job
        changes["input_summary"] = _summary(
            template=job.template,
            topic=changes.get("topic", job.topic),
            audience=changes.get("audience", job.audience),
            source_count=manifest.entries.count(),
        )
        return _change(job, actor=actor, action=EventAction.EDITED, details={"changed": changed}, **changes)


# --- Worker transitions ------------------------------------------------------------------


def job_mark_preparing(*, job: ReportJob, actor=WORKER) -> ReportJob | None:
    """queued → preparing. Returns None when the job is no longer queued (nothing to do)."""
    with transaction.atomic():
        job = _lock(job)
        if job.status != JobStatus.QUEUED:
            return None
        # The attempt begins: it freezes the template as it is now (an edit made while the job
        # waited in the queue applies), and the review the template asks for now is the one due.
        frozen = job.template.run_settings()
        JobAttempt.objects.filter(pk=job.current_attempt_id).update(
            status=AttemptStatus.RUNNING, started_at=timezone.now(), template_settings=frozen
        )
        if job.current_attempt is not None:
            job.current_attempt.template_settings = frozen
        review_state = job.review_state
        if review_state in (ReviewState.PENDING, ReviewState.NOT_REQUIRED):
            review_state = _initial_review_state(job.template)
        return _change(job, actor=actor, action=EventAction.PREPARING, status=JobStatus.PREPARING, review_state=review_state)


def job_mark_running(
    *, job: ReportJob, call, response_id: str, provider_status: str, actor=WORKER, check_in: float | None = None
) -> ReportJob | None:
    """preparing → running, once the provider has accepted the request; the first check
    `check_in` seconds later (POLL_FIRST_SECONDS by default)."""
    now = timezone.now()
    with transaction.atomic():
        job = _lock(job)
        if job.status != JobStatus.PREPARING or job.current_attempt_id != call.attempt_id:
            return None
        return _change(
            job,
            actor=actor,
            action=EventAction.STARTED,
            status=JobStatus.RUNNING,
            provider_response_id=response_id,
            started_at=job.started_at or now,
            last_checked_at=now,
            next_check_at=now + dt.timedelta(seconds=settings.POLL_FIRST_SECONDS if check_in is None else check_in),
            details={"provider_response_id": response_id, "provider_status": provider_status, "attempt": job.current_attempt.number},
        )


def job_finish(
    *, job: ReportJob, attempt: JobAttempt, artifacts: dict[str, str], actor=WORKER, offline: bool = False
) -> ReportJob | None:
    """running → needs_review, or completed when the template does not require review: store
    the draft's artifacts as version N+1 of the report, under one lock with the transition.
    An `offline` draft (written by the local engine) needs review all the same unless the
    template lets local drafts complete.

    Returns None for a late result: a job that is no longer running on this attempt (canceled,
    expired, failed) is never reopened. Artifacts are unique per (attempt, kind), so a
    repeated store writes nothing twice.
    """
    now = timezone.now()
    with transaction.atomic():
        job = _lock(job)
        if job.status != JobStatus.RUNNING or job.current_attempt_id != attempt.pk:
            return None
        Artifact.objects.bulk_create(
            [Artifact(job=job, attempt=attempt, kind=ArtifactKind(kind), content=content) for kind, content in artifacts.items()],
            ignore_conflicts=True,
        )
        version = job.version + 1
        runtime = (now - (attempt.started_at or job.created_at)).total_seconds()
        JobAttempt.objects.filter(pk=attempt.pk).update(status=AttemptStatus.SUCCEEDED, finished_at=now, version=version)
        template = job.run_template
        if template.review_required or (offline and not template.local_drafts_complete):
            status, review_state, action = JobStatus.NEEDS_REVIEW, ReviewState.PENDING, EventAction.DRAFT_READY
        else:
            status, review_state, action = JobStatus.COMPLETED, ReviewState.NOT_REQUIRED, EventAction.COMPLETED
        return _change(
            job,
            actor=actor,
            action=action,
            status=status,
            review_state=review_state,
            version=version,
            runtime_seconds=job.runtime_seconds + runtime,
            finished_at=now,
            next_check_at=None,
            details={"version": version, "attempt": attempt.number, "offline": offline},
        )


def job_fail(
    *, job: ReportJob, failure_class: str, message: str, actor=WORKER, details: dict | None = None,
    retryable: bool | None = None, attempt: JobAttempt | None = None,
) -> ReportJob | None:
    """queued | preparing | running → failed. Returns None if the job had already left those
    states, or (when `attempt` is given) has moved on to another attempt.

    `retryable` defaults to the failure class's rule (timeout, provider_error, source_error)."""
    if failure_class not in FailureClass.values:
        failure_class = FailureClass.UNKNOWN
    if retryable is None:
        retryable = failure_class in RETRYABLE_FAILURES
    with transaction.atomic():
        job = _lock(job)
        if job.status not in ACTIVE_STATUSES:
            return None
        if attempt is not None and job.current_attempt_id != attempt.pk:
            return None
        _close_attempt(job, status=AttemptStatus.FAILED, error=message)
        return _change(
            job,
            actor=actor,
            action=EventAction.FAILED,
            status=JobStatus.FAILED,
            failure_class=failure_class,
            failure_message=message[:2000],
            failure_retryable=retryable,
            finished_at=timezone.now(),
            next_check_at=None,
            reason=message[:2000],
            details={"failure_class": failure_class, "retryable": retryable, **(details or {})},
        )


# --- People's transitions ----------------------------------------------------------------


def job_cancel(*, job: ReportJob, actor, reason: str = "") -> ReportJob:
    """Stop a queued, preparing or running job. Canceling a canceled job changes nothing."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize_role(job, actor, policy.CANCEL)
        if job.status == JobStatus.CANCELED:
            return job
        _authorize(job, actor, policy.CANCEL)
        _close_attempt(job, status=AttemptStatus.CANCELED)
        _cancel_live_responses_on_commit(job)
        return _change(
            job,
            actor=actor,
            action=EventAction.CANCELED,
            status=JobStatus.CANCELED,
            finished_at=timezone.now(),
            next_check_at=None,
            reason=reason,
        )


def job_expire(*, job: ReportJob, actor, reason: str = "") -> ReportJob:
    """A job that missed its useful window (or its review window) will not be delivered."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize_role(job, actor, policy.EXPIRE)
        if job.status == JobStatus.EXPIRED:
            return job
        _authorize(job, actor, policy.EXPIRE)
        _close_attempt(job, status=AttemptStatus.CANCELED)
        # An open review claim on a draft that expires lapses with it: reviews treats claims
        # as open only while the job needs review, and an expired job never does again.
        _cancel_live_responses_on_commit(job)
        return _change(
            job,
            actor=actor,
            action=EventAction.EXPIRED,
            status=JobStatus.EXPIRED,
            finished_at=timezone.now(),
            next_check_at=None,
            reason=reason,
        )


def job_retry(*, job: ReportJob, actor, reason: str = "") -> ReportJob:
    """failed → queued with a new attempt. Only retryable failure classes."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.RETRY)
        return _requeue(job, actor=actor, action=EventAction.RETRIED, reason=reason, attempt_reason=AttemptReason.RETRY)


def job_revise(*, job: ReportJob, actor, instructions: str) -> ReportJob:
    """failed | rejected → queued with a new attempt that carries `instructions`."""
    actor = Actor.of(actor)
    instructions = (instructions or "").strip()
    if not instructions:
        raise ValidationFailed("Say what should change.", fields={"instructions": "This field may not be blank."})
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.REVISE)
        return _requeue(
            job,
            actor=actor,
            action=EventAction.REVISION_REQUESTED,
            reason=instructions,
            attempt_reason=AttemptReason.REVISION,
            instructions=instructions,
        )


def _requeue(
    job: ReportJob, *, actor: Actor, action: str, reason: str, attempt_reason: str, instructions: str = "", details: dict | None = None,
) -> ReportJob:
    """Start a new attempt on a locked job: back to queued, the worker takes it from there."""
    manifest = job.source_manifest
    if job.failure_class == FailureClass.SOURCE_ERROR:
        # Fetch the URLs that failed again, as new items: the failed ones may be shared with
        # other jobs' frozen manifests.
        manifest = manifest_refreshed(manifest=manifest, created_by=actor.user, failed_only=True)
    attempt = _new_attempt(job, reason=attempt_reason, actor=actor, manifest=manifest, instructions=instructions)
    review_state = job.review_state
    if attempt_reason == AttemptReason.REVISION and job.template.review_required:
        review_state = ReviewState.REVISION_REQUESTED
    elif job.template.review_required:
        review_state = ReviewState.PENDING
    job_advance_on_commit(job)
    now = timezone.now()
    return _change(
        job,
        actor=actor,
        action=action,
        status=JobStatus.QUEUED,
        review_state=review_state,
        current_attempt=attempt,
        source_manifest=manifest,
        failure_class="",
        failure_message="",
        failure_retryable=False,
        finished_at=None,
        request_locked_at=None,
        provider_response_id="",
        next_check_at=now,
        retries=job.retries + (1 if attempt_reason == AttemptReason.RETRY else 0),
        deadline=max(job.deadline or now, now + dt.timedelta(hours=job.template.useful_window_hours)),
        reason=reason,
        details={**(details or {}), "attempt": attempt.number, "reason": attempt_reason},
    )


def job_request_revision(*, job: ReportJob, actor, comment: str, instructions: str = "", details: dict | None = None) -> ReportJob:
    """needs_review → queued: a new attempt carries `instructions` to the model (the reviewer's
    comment when not given separately); the event's reason is the comment and its details the
    decision's (the version sent back, the review, the checks), beside the new attempt (called
    by reviews)."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.REQUEST_REVISION)
        return _requeue(
            job, actor=actor, action=EventAction.REVISION_REQUESTED, reason=comment,
            attempt_reason=AttemptReason.REVISION, instructions=instructions or comment, details=details,
        )


def job_approve(*, job: ReportJob, actor, reason: str = "", details: dict | None = None) -> ReportJob:
    """needs_review → completed (called by reviews.services.review_decide)."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.APPROVE)
        return _change(
            job, actor=actor, action=EventAction.APPROVED, status=JobStatus.COMPLETED,
            review_state=ReviewState.APPROVED, finished_at=timezone.now(), reason=reason, details=details,
        )


def job_reject(*, job: ReportJob, actor, reason: str, details: dict | None = None) -> ReportJob:
    """needs_review → rejected (called by reviews.services.review_decide)."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.REJECT)
        return _change(
            job, actor=actor, action=EventAction.REJECTED, status=JobStatus.REJECTED,
            review_state=ReviewState.REJECTED, finished_at=timezone.now(), reason=reason, details=details,
        )


def job_archive(*, job: ReportJob, actor, reason: str = "") -> ReportJob:
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.ARCHIVE)
        return _change(job, actor=actor, action=EventAction.ARCHIVED, archived_at=timezone.now(), reason=reason)


def job_unarchive(*, job: ReportJob, actor, reason: str = "") -> ReportJob:
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.UNARCHIVE)
        return _change(job, actor=actor, action=EventAction.UNARCHIVED, archived_at=None, reason=reason)


def job_rerun(
    *, job: ReportJob, actor, topic: str | None = None, audience: str | None = None, sources: list[SourceSpec] | None = None
) -> ReportJob:
    """Start a new job from this one's request; URL sources are fetched anew."""
    actor = Actor.of(actor)
    with transaction.atomic():
        job = _lock(job)
        _authorize(job, actor, policy.RERUN)
        manifest = None
        if sources is None:
            manifest = manifest_refreshed(manifest=job.source_manifest, created_by=actor.user)
        new_job = job_submit(
            workspace=job.workspace,
            requested_by=actor.user,
            template=job.template,
            topic=job.topic if topic is None else topic,
            audience=job.audience if audience is None else audience,
            sources=sources or [],
            manifest=manifest,
            rerun_of=job,
        )
        rerun_started(job=job, actor=actor, new_job=new_job)
    return new_job


# --- Reads that leave a trace ------------------------------------------------------------


def job_record_export(*, job: ReportJob, actor, fmt: str, version: int) -> None:
    """Remember that a report was opened or exported (metrics: export rate, abandoned jobs)."""
    now = timezone.now()
    updates = {"exported_at": now}
    if job.first_opened_at is None:
        updates["first_opened_at"] = now
    with transaction.atomic():
        ReportJob.objects.filter(pk=job.pk).update(**updates)
        report_exported(job=job, actor=actor, fmt=fmt, version=version)
