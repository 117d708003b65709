from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Plumbing for operators' own tools: the Prometheus endpoint and the log context of
    requests and tasks."""

    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        from django_q.signals import post_execute_in_worker, pre_execute
        from django_structlog.signals import bind_extra_request_metadata

        from .log_context import bind_job_of_request, bind_task, unbind_task

        bind_extra_request_metadata.connect(bind_job_of_request, dispatch_uid="ops.bind_job_of_request")
        pre_execute.connect(bind_task, dispatch_uid="ops.bind_task")
        post_execute_in_worker.connect(unbind_task, dispatch_uid="ops.unbind_task")
