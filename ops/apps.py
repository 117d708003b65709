from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Plumbing for operators' own tools: the Prometheus endpoint and request log context."""

    name = "ops"
    verbose_name = "Operations"
