"""Log context beyond what the code binds itself: the job's public id on every line of a
request about one job, from its first line (django-structlog's `request_started`) to its
last; and django-q2's task id on every line of a task a worker runs (the worker's own step
binds the job and attempt, the dispatcher its token)."""

import structlog
from django.urls import Resolver404, resolve

# (namespace-qualified url name prefix, the URL kwarg holding the job's id)
JOB_ROUTES = (
    ("api:job-", "id"),
    ("admin:jobs_reportjob_", "object_id"),
    ("admin:reviews_review_", "public_id"),
)


def bind_job_of_request(sender, request, logger, log_kwargs, **kwargs):
    """django-structlog's bind_extra_request_metadata receiver."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return
    for prefix, kwarg in JOB_ROUTES:
        if match.view_name.startswith(prefix) and match.kwargs.get(kwarg):
            structlog.contextvars.bind_contextvars(job=str(match.kwargs[kwarg]))
            return


def bind_task(sender, func=None, task=None, **kwargs):
    """django-q2's pre_execute receiver (in the worker process, before the task runs)."""
    structlog.contextvars.bind_contextvars(task_id=(task or {}).get("id"))


def unbind_task(sender, **kwargs):
    """django-q2's post_execute_in_worker receiver."""
    structlog.contextvars.unbind_contextvars("task_id")
