"""Puts the job's public id into the log context of every request about one job."""

import structlog

# (namespace-qualified url name prefix, the URL kwarg holding the job's id)
JOB_ROUTES = (
    ("api:job-", "id"),
    ("admin:jobs_reportjob_", "object_id"),
    ("admin:reviews_review_", "public_id"),
)


class JobLogContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        name = match.view_name if match else ""
        for prefix, kwarg in JOB_ROUTES:
            if name.startswith(prefix) and view_kwargs.get(kwarg):
                structlog.contextvars.bind_contextvars(job=str(view_kwargs[kwarg]))
                break
        return None
