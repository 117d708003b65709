from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, **kwargs):
    from .tasks import schedules_ensure

    schedules_ensure()


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        post_migrate.connect(_after_migrate, sender=self)
