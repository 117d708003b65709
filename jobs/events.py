"""The audit trail: who did what to a job, written in the transaction that made the change.

`event_record` writes one JobEvent; the helpers below it name the events that are not a
status change (those are written by jobs.services' transitions). Every action is an
`EventAction` member, and readers (metrics, indexes, the timeline) use the same members.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import queue
from .models import ActorKind, EventAction, JobEvent, ReportJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who did something: a user, or a part of the system."""

    kind: str
    user: Any = None

    @classmethod
    def system(cls, kind: str = ActorKind.WORKER) -> Actor:
        return cls(kind=kind)

    @classmethod
    def of(cls, who) -> Actor:
        if isinstance(who, Actor):
            return who
        if isinstance(who, str):
            return cls(kind=who)
        return cls(kind=ActorKind.USER, user=who)

    @property
    def is_user(self) -> bool:
        return self.kind == ActorKind.USER


WORKER = Actor.system(ActorKind.WORKER)
SCHEDULER = Actor.system(ActorKind.SCHEDULER)
WEBHOOK = Actor.system(ActorKind.WEBHOOK)


def event_record(
    *,
    job: ReportJob,
    actor,
    action: EventAction,
    from_status: str = "",
    to_status: str = "",
    from_review_state: str = "",
    to_review_state: str = "",
    reason: str = "",
    details: dict | None = None,
) -> JobEvent:
    """Write one audit event. Call inside the transaction that makes the change; once it
    commits, the event is handed on to whatever tells people and systems about it."""
    actor = Actor.of(actor)
    log.info(
        "job event %s", action,
        extra={"job": job.public_id, "action": action, "from_status": from_status,
               "to_status": to_status or from_status, "actor": actor.kind},
    )
    event = JobEvent.objects.create(
        job=job,
        actor_kind=actor.kind,
        actor=actor.user,
        actor_name=actor.user.get_username() if actor.user else "",
        action=EventAction(action),
        from_status=from_status,
        to_status=to_status or from_status,
        from_review_state=from_review_state,
        to_review_state=to_review_state or from_review_state,
        reason=reason,
        details=details or {},
    )
    queue.enqueue_on_commit(queue.enqueue_event_notify, event.pk)
    return event


def _note(job: ReportJob, *, actor, action: EventAction, reason: str = "", details: dict | None = None) -> JobEvent:
    """An event that records something about the job without changing its state."""
    return event_record(
        job=job, actor=actor, action=action, from_status=job.status, from_review_state=job.review_state,
        reason=reason, details=details,
    )


# --- Events that are not a state change --------------------------------------------------


def worker_error_recorded(*, job: ReportJob, attempt: int, message: str) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.WORKER_ERROR, reason=message,
                 details={"attempt": attempt, "error": message})


def worker_errors_count(*, job: ReportJob, attempt: int) -> int:
    """How many unexpected worker errors this attempt has had (the reader of the event above)."""
    return job.events.filter(action=EventAction.WORKER_ERROR, details__attempt=attempt).count()


def sources_partially_failed(*, job: ReportJob, failed: list[dict]) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.SOURCES_PARTIALLY_FAILED, details={"failed": failed})


def provider_call_lost(*, job: ReportJob, call_id: int, retry: int) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.PROVIDER_CALL_LOST, details={"call": call_id, "retry": retry})


def provider_call_unconfirmed(*, job: ReportJob, call_id: int, reason: str, until) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.PROVIDER_CALL_UNCONFIRMED, reason=reason,
                 details={"call": call_id, "no_new_create_until": until.isoformat()})


def provider_call_reconciled(*, job: ReportJob, call_id: int, response_id: str, status: str) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.PROVIDER_CALL_RECONCILED,
                 details={"call": call_id, "response_id": response_id, "provider_status": status})


def provider_orphan_found(*, job: ReportJob, call_id: int, response_id: str, status: str, kept: bool, canceled: str | None) -> JobEvent:
    """Two responses for one create: which was kept, which canceled (or already ended)."""
    return _note(job, actor=WORKER, action=EventAction.PROVIDER_ORPHAN_FOUND,
                 details={"call": call_id, "response_id": response_id, "provider_status": status,
                          "kept": kept, "canceled": canceled})


def provider_retry_scheduled(*, job: ReportJob, reason: str, details: dict) -> JobEvent:
    return _note(job, actor=WORKER, action=EventAction.PROVIDER_RETRY_SCHEDULED, reason=reason, details=details)


def provider_chain_lost(*, job: ReportJob, response_id: str) -> JobEvent:
    return _note(
        job, actor=WORKER, action=EventAction.PROVIDER_CHAIN_LOST,
        reason="The previous response is gone at the provider; its content is sent as input instead.",
        details={"previous_response_id": response_id},
    )


def provider_notified(*, job: ReportJob, details: dict, actor=WEBHOOK) -> JobEvent:
    """The provider told us a response ended: its webhook, or (actor WORKER) its event stream."""
    return _note(job, actor=actor, action=EventAction.PROVIDER_NOTIFIED, details=details)


def report_exported(*, job: ReportJob, actor, fmt: str, version: int) -> JobEvent:
    return _note(job, actor=actor, action=EventAction.EXPORTED, details={"format": fmt, "version": version})


def rerun_started(*, job: ReportJob, actor, new_job: ReportJob) -> JobEvent:
    return _note(job, actor=actor, action=EventAction.RERUN, details={"new_job": new_job.public_id})


def review_claimed(*, job: ReportJob, reviewer, details: dict | None = None) -> JobEvent:
    return _note(job, actor=reviewer, action=EventAction.CLAIMED, details=details)


def review_released(*, job: ReportJob, reviewer, reason: str = "", details: dict | None = None) -> JobEvent:
    return _note(job, actor=reviewer, action=EventAction.RELEASED, reason=reason, details=details)
