from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, **kwargs):
    from .roles import roles_ensure
    from .tasks import schedules_ensure

    roles_ensure()
    schedules_ensure()


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Report jobs"

    def ready(self):
        post_migrate.connect(_after_migrate, sender=self)
