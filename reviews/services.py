"""Review decisions: claim a draft, release it, decide on it.

Every write locks the job row first (`select_for_update` in `transaction.atomic`), so claims
and decisions on one job are serialised; the database also allows only one open claim per
job (reviews.Review), so two reviewers can never hold the same draft. A claim expires after
REVIEW_CLAIM_MINUTES and is released by whoever next claims. A decision moves the job through
jobs.services in the same transaction as the review record and the audit event.

`review_decide` runs the automatic checks itself (reviews.checks) rather than trusting what a
client says it saw, refuses approval of a draft with failed checks unless the reviewer gives
an override reason, and stores the checks and the reviewer's checklist with the decision.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import policy
from jobs import events
from jobs import services as job_services
from jobs.models import JobStatus, ReportJob
from reportdesk.errors import ClaimConflict, InvalidTransition, PermissionDenied, ValidationFailed

from .checks import ReviewChecks
from .models import CHECKLIST, Decision, Review, ReviewComment
from .selectors import checks_for_attempt

# At most this many failed checks are spelled out in a revision's instructions.
REVISION_CHECKS_LISTED = 10
SECTION_HEADING_MAX = 300


def _lock(job: ReportJob) -> ReportJob:
    locked = job_services.job_lock(job.pk)
    if locked is None:
        raise ReportJob.DoesNotExist(f"Job {job.pk} no longer exists.")
    return locked


def _unresolved_claims(job: ReportJob):
    """Claims neither decided nor released (expired or not): what the constraint counts."""
    return Review.objects.filter(job=job, decided_at__isnull=True, released_at__isnull=True)


def _holder_message(holder: Review | None) -> str:
    if holder is None:
        return "Another reviewer is reviewing this draft."
    return (
        f"{holder.reviewer.get_username()} is reviewing this draft; "
        f"their claim expires at {holder.claim_expires_at:%H:%M} UTC."
    )


def review_claim(*, job: ReportJob, reviewer) -> Review:
    """Claim the job's current draft for `reviewer`. Claiming your own open claim renews it;
    an expired claim of anyone's is released and taken over."""
    now = timezone.now()
    expires = now + dt.timedelta(minutes=settings.REVIEW_CLAIM_MINUTES)
    try:
        with transaction.atomic():
            job = _lock(job)
            # The role first: someone who may never review this job is told so, whatever its state.
            if (refusal := policy.role_refusal(job, reviewer, policy.APPROVE)) is not None:
                raise PermissionDenied(refusal)
            if job.status != JobStatus.NEEDS_REVIEW or job.archived_at is not None:
                raise InvalidTransition(f"Only drafts that need review can be claimed; this job is {job.status}.")
            claims = _unresolved_claims(job).select_related("reviewer")
            expired = [c for c in claims if c.claim_expires_at and c.claim_expires_at <= now]
            if expired:
                Review.objects.filter(pk__in=[c.pk for c in expired]).update(released_at=now)
            mine = next((c for c in claims if c not in expired and c.reviewer_id == reviewer.pk), None)
            if mine is not None:
                Review.objects.filter(pk=mine.pk).update(claim_expires_at=expires)
                mine.claim_expires_at = expires
                return mine
            holder = next((c for c in claims if c not in expired), None)
            if holder is not None:
                raise ClaimConflict(_holder_message(holder))
            review = Review.objects.create(
                job=job, attempt_id=job.current_attempt_id, reviewer=reviewer, claimed_at=now, claim_expires_at=expires
            )
            details = {"version": job.version, "expires_at": expires.isoformat()}
            if expired:
                details["took_over_expired_claim_of"] = [c.reviewer.get_username() for c in expired]
            events.review_claimed(job=job, reviewer=reviewer, details=details)
            return review
    except IntegrityError:
        # Only a writer that skipped the job lock can get here; the constraint still holds.
        raise ClaimConflict(_holder_message(_unresolved_claims(job).select_related("reviewer").first())) from None


def review_release(*, job: ReportJob, reviewer, reason: str = "") -> None:
    """Give the draft back to the queue. The holder releases their own claim; an operator may
    release anyone's (a reviewer who went home). Releasing when nobody holds it (an expired
    claim, a draft that expired) does nothing."""
    now = timezone.now()
    with transaction.atomic():
        job = _lock(job)
        claims = list(_unresolved_claims(job).select_related("reviewer"))
        # A claim that expired, or whose draft no longer needs review, holds nothing: it is
        # closed quietly, whoever asks.
        lapsed = [c for c in claims if job.status != JobStatus.NEEDS_REVIEW or (c.claim_expires_at and c.claim_expires_at <= now)]
        if lapsed:
            Review.objects.filter(pk__in=[c.pk for c in lapsed]).update(released_at=now)
        claim = next((c for c in claims if c not in lapsed), None)
        if claim is None:
            return
        if not policy.may_release_claim(reviewer, workspace_id=job.workspace_id, holder_id=claim.reviewer_id):
            raise PermissionDenied(
                f"{claim.reviewer.get_username()} holds this claim; only they or an operator can release it."
            )
        Review.objects.filter(pk=claim.pk).update(released_at=now)
        details = {"version": job.version}
        if claim.reviewer_id != reviewer.pk:
            details["claim_of"] = claim.reviewer.get_username()
        events.review_released(job=job, reviewer=reviewer, reason=reason, details=details)


def checklist_normalise(checklist) -> dict[str, bool]:
    """Every checklist item → confirmed or not. Accepts None, a dict of item → bool, or the
    confirmed items as a list."""
    confirmed = dict.fromkeys(CHECKLIST, False)
    if checklist is None:
        return confirmed
    if isinstance(checklist, dict):
        values = checklist
    elif isinstance(checklist, (list, tuple, set, frozenset)):
        values = dict.fromkeys(checklist, True)
    else:
        raise ValidationFailed(
            "The checklist must map each item to true or false.", fields={"checklist": "An object of item: boolean."}
        )
    unknown = [str(key) for key in values if key not in CHECKLIST]
    if unknown:
        raise ValidationFailed(
            f"Unknown checklist item(s): {', '.join(unknown)}. Items: {', '.join(CHECKLIST)}.",
            fields={"checklist": f"Unknown item(s): {', '.join(unknown)}."},
        )
    for key, value in values.items():
        if not isinstance(value, bool):
            raise ValidationFailed(
                f"Checklist item {key} must be true or false.", fields={"checklist": f"{key}: true or false."}
            )
        confirmed[key] = value
    return confirmed


def _clean_section_comments(section_comments: dict | None) -> dict[str, str]:
    cleaned = {}
    for heading, body in (section_comments or {}).items():
        heading = " ".join(str(heading or "").split())[:SECTION_HEADING_MAX]
        body = str(body or "").strip()
        if body:
            cleaned[heading] = body
    return cleaned


def revision_instructions(*, comment: str, section_comments: dict[str, str], checks: ReviewChecks) -> str:
    """What the next attempt is told: the reviewer's notes, then the checks that failed."""
    parts = [comment] if comment else []
    parts += [f"On the section “{heading}”: {body}" if heading else body for heading, body in section_comments.items()]
    failed = checks.failed
    if failed:
        lines = [f"Automatic checks that failed on version {checks.version}:"]
        for result in failed[:REVISION_CHECKS_LISTED]:
            where = f"{result.section}: " if result.section else ""
            what = f" (“{result.claim[:200]}”)" if result.claim else ""
            lines.append(f"- {where}{result.message}{what}")
        if len(failed) > REVISION_CHECKS_LISTED:
            lines.append(f"- … and {len(failed) - REVISION_CHECKS_LISTED} more.")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def review_decide(
    *,
    job: ReportJob,
    reviewer,
    decision: str,
    comment: str = "",
    override_reason: str = "",
    checklist: dict | list | None = None,
    section_comments: dict[str, str] | None = None,
    version: int | None = None,
) -> ReportJob:
    """Approve, reject or request revision of the job's current draft.

    Takes the claim if nobody holds it (an integration may decide without claiming first);
    refuses if someone else does. Rejecting needs a comment; a revision needs a comment or a
    section comment. Approving needs every checklist item confirmed and, when any automatic
    check failed, an override reason. `version`, when given, is the version the reviewer read:
    a decision on a draft that has since changed is refused.
    """
    if decision not in Decision.values:
        raise ValidationFailed(
            f"Unknown decision '{decision}'. Use approve, reject or request_revision.",
            fields={"decision": "Must be approve, reject or request_revision."},
        )
    comment = (comment or "").strip()
    override_reason = (override_reason or "").strip()
    notes = _clean_section_comments(section_comments)
    confirmed = checklist_normalise(checklist)
    if decision == Decision.REJECT and not comment:
        raise ValidationFailed("Say why the draft is rejected.", fields={"comment": "Required to reject."})
    if decision == Decision.REQUEST_REVISION and not (comment or notes):
        raise ValidationFailed(
            "Say what should change: a revision needs a comment.", fields={"comment": "Required to request a revision."}
        )
    with transaction.atomic():
        locked = _lock(job)
        if version is not None and locked.version != version and locked.status == JobStatus.NEEDS_REVIEW:
            raise InvalidTransition(
                f"The draft is now version {locked.version}; you read version {version}. Read it before deciding."
            )
        review = review_claim(job=locked, reviewer=reviewer)
        checks = checks_for_attempt(attempt=locked.current_attempt)
        if decision == Decision.APPROVE:
            errors = {}
            unconfirmed = [key for key in CHECKLIST if not confirmed[key]]
            if unconfirmed:
                errors["checklist"] = (
                    f"Confirm every checklist item before approving ({len(unconfirmed)} of {len(CHECKLIST)} "
                    f"not confirmed: {', '.join(unconfirmed)})."
                )
            if checks.has_failures and not override_reason:
                count = len(checks.failed)
                errors["override_reason"] = (
                    f"{count} automatic check{'s' if count != 1 else ''} failed on this draft; "
                    "approving it anyway needs an override reason saying why."
                )
            if errors:
                raise ValidationFailed(" ".join(errors.values()), fields=errors)
        stored = checks.as_json()
        details = {
            "version": locked.version,
            "review": review.pk,
            "checks": {**stored["counts"], "failed_checks": stored["failed_checks"]},
            "checklist": confirmed,
        }
        if override_reason:
            details["override_reason"] = override_reason
        if decision == Decision.APPROVE:
            job = job_services.job_approve(job=locked, actor=reviewer, reason=override_reason or comment, details=details)
        elif decision == Decision.REJECT:
            job = job_services.job_reject(job=locked, actor=reviewer, reason=comment, details=details)
        else:
            job = job_services.job_request_revision(
                job=locked, actor=reviewer, comment=comment,
                instructions=revision_instructions(comment=comment, section_comments=notes, checks=checks), details=details,
            )
        Review.objects.filter(pk=review.pk).update(
            decision=decision, decided_at=timezone.now(), comment=comment, override_reason=override_reason,
            checklist=confirmed, checks=stored,
        )
        comments = ([("", comment)] if comment else []) + list(notes.items())
        ReviewComment.objects.bulk_create(
            [ReviewComment(review=review, author=reviewer, section=heading, body=body) for heading, body in comments]
        )
    return job
