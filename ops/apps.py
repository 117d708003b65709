from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Plumbing for operators' own tools: the Prometheus endpoint and request log context."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from django_structlog.signals import bind_extra_request_metadata

        from .log_context import bind_job_of_request

        bind_extra_request_metadata.connect(bind_job_of_request, dispatch_uid="ops.bind_job_of_request")
