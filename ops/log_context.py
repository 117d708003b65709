"""Puts the job's public id into the log context of every request about one job, from its
first line (django-structlog's `request_started`) to its last."""

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
