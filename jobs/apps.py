import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, **kwargs):
    from .roles import roles_ensure
    from .tasks import schedules_ensure

    roles_ensure()
    schedules_ensure()


def _worker_spawned(sender, proc_name=None, **kwargs):
    """A django-q2 worker process started: let SIGTERM stop it gracefully, and make sure a
    dispatcher runs now rather than at the scheduler's first firing, about 30 s later."""
    from .graceful_stop import graceful_stop_install
    from .heartbeat import dispatcher_ensure

    graceful_stop_install()
    try:
        dispatcher_ensure()
    except Exception:  # the cluster must come up even if the database is not ready yet
        logging.getLogger(__name__).exception("could not start the dispatcher")


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Report jobs"

    def ready(self):
        from django_q.signals import post_spawn

        from .graceful_stop import sentinel_shield_install

        post_migrate.connect(_after_migrate, sender=self)
        sentinel_shield_install()
        post_spawn.connect(_worker_spawned, dispatch_uid="jobs.dispatcher_on_spawn")
