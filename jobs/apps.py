import logging
import multiprocessing

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(sender, **kwargs):
    from .roles import roles_ensure
    from .tasks import schedules_ensure

    roles_ensure()
    schedules_ensure()


def _worker_spawned(sender, proc_name=None, **kwargs):
    """A django-q2 worker process started: let SIGTERM stop it gracefully, make sure a
    dispatcher runs now rather than at the scheduler's first firing, about 30 s later, keep
    watching that one does (a killed cluster's dispatcher lease looks alive for a few seconds
    more), and follow the streams of the responses it creates.

    Only in a spawned worker process: django-q2's sync mode sends post_spawn from the calling
    process for every task it runs inline, and a watch thread started there per task would
    outlive it (dozens of them, reading a database the caller no longer has)."""
    if multiprocessing.parent_process() is None:
        return
    from .worker.dispatcher import dispatcher_ensure, dispatcher_watch
    from .worker.graceful_stop import graceful_stop_install
    from .worker.stream_watch import stream_watch_enable

    graceful_stop_install()
    stream_watch_enable()
    try:
        dispatcher_ensure()
    except Exception:  # the cluster must come up even if the database is not ready yet
        logging.getLogger(__name__).exception("could not start the dispatcher")
    dispatcher_watch()


class JobsConfig(AppConfig):
    name = "jobs"
    # Not "Report jobs": the breadcrumb would read "Report jobs › Report jobs".
    verbose_name = "Reports"

    def ready(self):
        from django_q.signals import post_spawn

        from .worker.graceful_stop import sentinel_shield_install

        # After every app's migrate, not only this one's: the role groups hold permissions of
        # other apps (reviews, sources), which exist only once their own migrate has run.
        post_migrate.connect(_after_migrate, dispatch_uid="jobs.roles_and_schedules")
        sentinel_shield_install()
        post_spawn.connect(_worker_spawned, dispatch_uid="jobs.dispatcher_on_spawn")
