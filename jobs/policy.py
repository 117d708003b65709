"""What a person may do with a job now: the one place the admin, the API and the review
page ask. Pure reads: the job's state decides which actions exist, the person's role in
the job's workspace decides which of those they get.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from reportdesk.errors import PermissionDenied
from reportdesk.formatting import span
from reportdesk.models import Role
from reportdesk.selectors import member_workspace_ids, user_roles

from .models import JobStatus, ReportJob

# Actions, as the API and the admin name them.
CANCEL = "cancel"
EDIT = "edit"
VIEW_SOURCES = "view_sources"
APPROVE = "approve"
REJECT = "reject"
REQUEST_REVISION = "request_revision"
OPEN = "open"
EXPORT = "export"
ARCHIVE = "archive"
UNARCHIVE = "unarchive"
RETRY = "retry"
REVISE = "revise"
RERUN = "rerun"
EXPIRE = "expire"
# Not an action on a job but the permission to make one (the admin's "Add report job").
SUBMIT = "submit"

REVIEW_ACTIONS = frozenset({APPROVE, REJECT, REQUEST_REVISION})

# DESIGN.md's table: what each status offers, in the order a person reads them.
STATUS_ACTIONS: dict[str, tuple[str, ...]] = {
    JobStatus.QUEUED: (CANCEL, EDIT, EXPIRE),
    JobStatus.PREPARING: (CANCEL, EDIT, EXPIRE),
    JobStatus.RUNNING: (CANCEL, VIEW_SOURCES, EXPIRE),
    JobStatus.NEEDS_REVIEW: (APPROVE, REJECT, REQUEST_REVISION, VIEW_SOURCES, EXPIRE),
    JobStatus.COMPLETED: (OPEN, EXPORT, ARCHIVE),
    JobStatus.FAILED: (RETRY, REVISE, RERUN, ARCHIVE),
    JobStatus.CANCELED: (RERUN, ARCHIVE),
    JobStatus.EXPIRED: (RERUN, ARCHIVE),
    JobStatus.REJECTED: (REVISE, RERUN, ARCHIVE),
}

# What each role may do. Requesters act on their own jobs only; reviewers never review a
# report they requested themselves.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    Role.REQUESTER: frozenset(
        {CANCEL, EDIT, VIEW_SOURCES, OPEN, EXPORT, ARCHIVE, UNARCHIVE, RETRY, REVISE, RERUN}
    ),
    Role.REVIEWER: frozenset({VIEW_SOURCES, OPEN, EXPORT, APPROVE, REJECT, REQUEST_REVISION}),
    Role.OPERATOR: frozenset(
        {CANCEL, EDIT, VIEW_SOURCES, OPEN, EXPORT, ARCHIVE, UNARCHIVE, RETRY, REVISE, RERUN, EXPIRE}
        | REVIEW_ACTIONS
    ),
}
# Who may submit a report (and so edit or rerun one) in a workspace.
SUBMIT_ROLES = frozenset({Role.REQUESTER, Role.OPERATOR})
OWN_JOBS_ONLY = frozenset({CANCEL, EDIT, ARCHIVE, UNARCHIVE, RETRY, REVISE, RERUN})

# The Django permission (codename on ReportJob) behind each role-gated action, so groups
# and the admin's has_*_permission agree with this module.
ACTION_PERMISSIONS = {
    SUBMIT: "submit_reportjob",
    CANCEL: "cancel_reportjob",
    RETRY: "retry_reportjob",
    REVISE: "retry_reportjob",
    RERUN: "submit_reportjob",
    EDIT: "submit_reportjob",
    EXPIRE: "expire_reportjob",
    ARCHIVE: "archive_reportjob",
    UNARCHIVE: "archive_reportjob",
    APPROVE: "review_reportjob",
    REJECT: "review_reportjob",
    REQUEST_REVISION: "review_reportjob",
}

_READ = frozenset(
    {
        "jobs.view_reportjob",
        "jobs.view_jobattempt",
        "jobs.view_providercall",
        "jobs.view_jobevent",
        "jobs.view_artifact",
        "jobs.view_reporttemplate",
        "sources.view_sourceitem",
        "sources.view_sourcemanifest",
        "reviews.view_review",
        "reviews.view_reviewcomment",
    }
)
# Django permissions ("app_label.codename") each role's group holds.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.REQUESTER: _READ
    | {"jobs.submit_reportjob", "jobs.cancel_reportjob", "jobs.retry_reportjob", "jobs.archive_reportjob"},
    Role.REVIEWER: _READ | {"jobs.review_reportjob"},
    Role.OPERATOR: _READ
    | {
        "jobs.submit_reportjob",
        "jobs.cancel_reportjob",
        "jobs.retry_reportjob",
        "jobs.expire_reportjob",
        "jobs.archive_reportjob",
        "jobs.review_reportjob",
        # Sign-in lockouts (django-axes): operators see them and clear them.
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    },
}

# What each role's admin index lists ("app_label.model_name"): the tables that role works
# with. Operators get every table they may view; the internal records are what they debug with.
ROLE_INDEX_MODELS: dict[str, frozenset[str] | None] = {
    Role.REQUESTER: frozenset({"jobs.reportjob", "jobs.reporttemplate", "sources.sourceitem"}),
    Role.REVIEWER: frozenset(
        {"jobs.reportjob", "jobs.reporttemplate", "sources.sourceitem", "reviews.reviewqueue", "reviews.review"}
    ),
    Role.OPERATOR: None,
}

USER_COPY = {
    JobStatus.QUEUED: "Your report is queued. You can leave this page and return later.",
    JobStatus.PREPARING: "Validating sources and report instructions.",
    JobStatus.RUNNING: "Running in the background.",
    JobStatus.NEEDS_REVIEW: "A draft is ready and needs human review before use.",
    JobStatus.COMPLETED: "The final report is ready.",
    JobStatus.FAILED: "Stopped before completion",
    JobStatus.CANCELED: "Stopped; it will not continue.",
    JobStatus.EXPIRED: "Missed its useful window or result-retention boundary.",
    JobStatus.REJECTED: "A reviewer rejected the draft; it will not be delivered.",
}


@dataclass(frozen=True)
class JobState:
    label: str
    message: str
    actions: tuple[str, ...]


def role_in(user, workspace_id: int) -> str | None:
    if getattr(user, "is_superuser", False):
        return Role.OPERATOR
    return user_roles(user).get(workspace_id)


# --- Who may do what, beyond a job's actions ---------------------------------------------

REVIEW_ROLES = (Role.REVIEWER, Role.OPERATOR)  # requesters never review


def visible_workspace_ids(user) -> list[int] | None:
    """Workspaces whose jobs, sources and reviews `user` may see (None: all, for a superuser)."""
    return member_workspace_ids(user)


def may_submit(user, workspace_id: int) -> bool:
    """Submit reports, edit their requests and add sources in the workspace."""
    return role_in(user, workspace_id) in SUBMIT_ROLES


def check_submit(user, workspace, *, what: str = "Submitting reports") -> None:
    """Refuse (403) before anything is stored when `user` may not submit in `workspace`."""
    if not may_submit(user, workspace.pk):
        raise PermissionDenied(f"{what} in {workspace.slug} needs the requester or operator role.")


def may_review_in(user, workspace_id: int) -> bool:
    return role_in(user, workspace_id) in REVIEW_ROLES


def check_review_queue(user) -> None:
    """Refuse (403) the review queue to someone who reviews in no workspace (requesters)."""
    if reviewable_workspace_ids(user) == []:
        raise PermissionDenied("The review queue is for reviewers and operators; you review in none of your workspaces.")


def reviewable_workspace_ids(user) -> list[int] | None:
    """Workspaces where `user` reviews drafts (None: every workspace, for a superuser)."""
    if getattr(user, "is_superuser", False):
        return None
    return [ws for ws, role in user_roles(user).items() if role in REVIEW_ROLES]


def is_operator(user, workspace_id: int) -> bool:
    """Operators run the workspace: they may act on anyone's jobs and claims."""
    return role_in(user, workspace_id) == Role.OPERATOR


def may_clear_provider_hold(user) -> bool:
    """Resuming provider calls after a quota or credential hold affects every workspace: any
    operator may do it (they are the ones notified)."""
    if getattr(user, "is_superuser", False):
        return True
    return Role.OPERATOR in user_roles(user).values()


def may_release_claim(user, *, workspace_id: int, holder_id: int) -> bool:
    """The holder releases their own review claim; an operator may release anyone's."""
    return holder_id == getattr(user, "pk", None) or is_operator(user, workspace_id)


def operated_workspace_ids(user) -> list[int] | None:
    """The workspaces where `user` is an operator (None: every workspace, for a superuser)."""
    if getattr(user, "is_superuser", False):
        return None
    return [workspace_id for workspace_id, role in user_roles(user).items() if role == Role.OPERATOR]


def operates_anywhere(user) -> bool:
    """May `user` see how the system runs (workers, queues, task records)?"""
    ids = operated_workspace_ids(user)
    return ids is None or bool(ids)


def index_lists(user, model_label: str) -> bool:
    """Does `user`'s admin index list the model (`app_label.model_name`)? Only hides: the
    model's own view permission still decides whether its pages open."""
    if getattr(user, "is_superuser", False):
        return True
    for role in set(user_roles(user).values()):
        models = ROLE_INDEX_MODELS[role]
        if models is None or model_label in models:
            return True
    return False


def submit_workspace_ids(user) -> list[int] | None:
    """The workspaces where `user` may submit reports (None: every workspace, superusers)."""
    if getattr(user, "is_superuser", False):
        return None
    return [workspace_id for workspace_id, role in user_roles(user).items() if role in SUBMIT_ROLES]

def state_actions(job: ReportJob) -> tuple[str, ...]:
    """The actions the job's state allows, whoever asks."""
    if job.archived_at is not None:
        return (UNARCHIVE, OPEN, EXPORT) if job.status == JobStatus.COMPLETED else (UNARCHIVE,)
    actions = STATUS_ACTIONS[job.status]
    if job.status == JobStatus.FAILED and not job.retryable:
        actions = tuple(a for a in actions if a != RETRY)
    if job.request_locked_at is not None:
        actions = tuple(a for a in actions if a != EDIT)
    return actions


def allowed_actions(job: ReportJob, user) -> tuple[str, ...]:
    """The actions `user` may take on `job` now."""
    role = role_in(user, job.workspace_id)
    if role is None:
        return ()
    granted = ROLE_ACTIONS[role]
    own = job.requested_by_id == getattr(user, "pk", None)
    result = []
    for action in state_actions(job):
        if action not in granted:
            continue
        if role == Role.REQUESTER and action in OWN_JOBS_ONLY and not own:
            continue
        if action in REVIEW_ACTIONS and own:
            continue
        result.append(action)
    return tuple(result)


def role_refusal(job: ReportJob, user, action: str) -> str | None:
    """Why `user`'s role never allows `action` on this job, whatever its state; None if it may."""
    role = role_in(user, job.workspace_id)
    if role is None:
        return "You are not a member of this job's workspace."
    if action in REVIEW_ACTIONS and job.requested_by_id == user.pk:
        return "You requested this report, so someone else must review it."
    if action not in ROLE_ACTIONS[role]:
        return f"Your role ({role}) does not include the '{action}' action."
    if role == Role.REQUESTER and action in OWN_JOBS_ONLY and job.requested_by_id != user.pk:
        return f"Requesters may {action} only their own jobs."
    return None


def why_not(job: ReportJob, user, action: str) -> str:
    """A sentence saying why `action` is not available to `user`, for refusals: the role
    first (a person who may never do it is told so, whatever the state), then the state."""
    return role_refusal(job, user, action) or state_refusal(job, action, user=user)


def state_refusal(job: ReportJob, action: str, *, user=None) -> str:
    """Why the job's state does not allow `action`, listing what is allowed now: to `user`
    when given (only what they may do), else to anyone."""
    allowed = ", ".join(state_actions(job) if user is None else allowed_actions(job, user)) or "none"
    where = f"{job.status}, archived" if job.archived_at else job.status
    if action == RETRY and job.status == JobStatus.FAILED and not job.retryable:
        return (
            f"A job that failed with {job.failure_class} cannot be retried: the same input "
            "would fail the same way. Revise the input (revise or rerun) instead."
        )
    if action == EDIT and job.request_locked_at is not None and job.status in STATUS_ACTIONS:
        return "The request is locked: the provider call has started. Cancel and rerun instead."
    return f"Cannot {action} a job that is {where}. Allowed now: {allowed}."


def job_state(job: ReportJob, user, *, now=None) -> JobState:
    """Label, user copy and allowed actions for one job and one person."""
    now = now or timezone.now()
    message = USER_COPY[job.status]
    if job.status == JobStatus.RUNNING:
        if job.last_checked_at:
            message += f" Last checked {span(job.last_checked_at, now)} ago."
        else:
            message += " Not checked yet."
    elif job.status == JobStatus.FAILED:
        message += f": {job.get_failure_class_display() or 'unknown'}."
        if job.failure_message:
            message += f" {job.failure_message}"
    if job.archived_at:
        message += " (Archived.)"
    # The enum's label, not get_status_display(), which rebuilds the choices' dict on every call.
    return JobState(label=JobStatus(job.status).label, message=message, actions=allowed_actions(job, user))
