"""Review decisions: claim a draft, release it, decide on it.

One open claim per job is a database constraint (reviews.Review); a claim expires after
REVIEW_CLAIM_MINUTES and is then released by whoever next tries to claim. The decision
moves the job through jobs.services, in the same transaction as the review record.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import policy
from jobs import services as job_services
from jobs.models import JobStatus, ReportJob
from reportdesk.errors import ClaimConflict, InvalidTransition, PermissionDenied, ValidationFailed

from .models import Decision, Review, ReviewComment


def _open_claims(job: ReportJob):
    return Review.objects.filter(job=job, decided_at__isnull=True, released_at__isnull=True)


def _release_expired(job: ReportJob, *, now) -> None:
    _open_claims(job).filter(claim_expires_at__lt=now).update(released_at=now)


def review_claim(*, job: ReportJob, reviewer) -> Review:
    """Claim the job's current draft for `reviewer`. Claiming your own open claim renews it."""
    now = timezone.now()
    if job.status != JobStatus.NEEDS_REVIEW:
        raise InvalidTransition(f"Only drafts that need review can be claimed; this job is {job.status}.")
    if policy.APPROVE not in policy.allowed_actions(job, reviewer):
        raise PermissionDenied(policy.why_not(job, reviewer, policy.APPROVE))
    expires = now + dt.timedelta(minutes=settings.REVIEW_CLAIM_MINUTES)
    try:
        with transaction.atomic():
            _release_expired(job, now=now)
            mine = _open_claims(job).filter(reviewer=reviewer).first()
            if mine is not None:
                Review.objects.filter(pk=mine.pk).update(claim_expires_at=expires)
                mine.claim_expires_at = expires
                return mine
            review = Review.objects.create(
                job=job, attempt_id=job.current_attempt_id, reviewer=reviewer, claimed_at=now, claim_expires_at=expires
            )
            job_services.event_record(
                job=job, actor=reviewer, action="claimed", from_status=job.status,
                from_review_state=job.review_state, details={"version": job.version, "expires_at": expires.isoformat()},
            )
            return review
    except IntegrityError:
        holder = _open_claims(job).select_related("reviewer").first()
        name = holder.reviewer.get_username() if holder else "another reviewer"
        raise ClaimConflict(f"{name} is reviewing this draft; their claim expires at {holder.claim_expires_at:%H:%M} UTC." if holder else f"{name} is reviewing this draft.")


def review_release(*, job: ReportJob, reviewer) -> None:
    """Give the draft back to the queue."""
    with transaction.atomic():
        released = _open_claims(job).filter(reviewer=reviewer).update(released_at=timezone.now())
        if released:
            job_services.event_record(
                job=job, actor=reviewer, action="released", from_status=job.status, from_review_state=job.review_state
            )


def review_decide(
    *,
    job: ReportJob,
    reviewer,
    decision: str,
    comment: str = "",
    override_reason: str = "",
    checklist: dict | None = None,
    checks: dict | None = None,
) -> ReportJob:
    """Approve, reject or request revision of the job's current draft.

    Takes the claim if nobody holds it (an integration may decide without claiming first);
    refuses if someone else does. Rejecting and requesting a revision need a comment.
    """
    if decision not in Decision.values:
        raise ValidationFailed(
            f"Unknown decision '{decision}'. Use approve, reject or request_revision.",
            fields={"decision": "Must be approve, reject or request_revision."},
        )
    comment = (comment or "").strip()
    if decision in (Decision.REJECT, Decision.REQUEST_REVISION) and not comment:
        raise ValidationFailed("Say why: rejecting or asking for a revision needs a comment.", fields={"comment": "Required."})
    with transaction.atomic():
        review = review_claim(job=job, reviewer=reviewer)
        details = {"version": job.version, "checklist": checklist or {}, "override_reason": override_reason}
        if decision == Decision.APPROVE:
            job = job_services.job_approve(job=job, actor=reviewer, reason=override_reason or comment, details=details)
        elif decision == Decision.REJECT:
            job = job_services.job_reject(job=job, actor=reviewer, reason=comment, details=details)
        else:
            job = job_services.job_request_revision(job=job, actor=reviewer, comment=comment)
        now = timezone.now()
        Review.objects.filter(pk=review.pk).update(
            decision=decision, decided_at=now, comment=comment, override_reason=override_reason,
            checklist=checklist or {}, checks=checks or {},
        )
        if comment:
            ReviewComment.objects.create(review=review, author=reviewer, body=comment)
    return job
