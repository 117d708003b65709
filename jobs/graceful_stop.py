"""A django-q2 worker process that stops on SIGTERM the way a person stopping it means.

django-q2 leaves SIGTERM at its default action in its worker processes, so `make run`'s
Ctrl-C, `systemctl stop` or a deploy (each signals the whole process group) killed a worker
mid-step: its job kept a lease until recovery noticed, and the dispatcher's lease went stale
before a successor could take over. Installed in every worker process as it spawns
(jobs.apps), this handler makes SIGTERM mean: an idle worker exits at once; a busy one
finishes its task (a job step completes and releases its lease; the dispatcher, which asks
`stop_requested()` every tick, returns within a tick interval and hands over) and exits
right after it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading

from django_q.signals import post_execute_in_worker, pre_execute

_stop = threading.Event()
_busy = threading.Event()
# django-q2 passes the finished task to its monitor just after post_execute_in_worker: exit
# this long after that signal, once the process is back to waiting for work.
EXIT_DELAY_SECONDS = 0.2


def stop_requested() -> bool:
    """Has this worker process been asked to stop? A long task returns early when it has."""
    return _stop.is_set()


def _on_sigterm(signum, frame):
    _stop.set()
    if not _busy.is_set():
        sys.exit(0)


def _task_started(sender, **kwargs):
    _busy.set()


def _task_finished(sender, **kwargs):
    _busy.clear()
    if _stop.is_set():
        threading.Timer(EXIT_DELAY_SECONDS, os.kill, args=(os.getpid(), signal.SIGTERM)).start()


def graceful_stop_install() -> None:
    """Take over SIGTERM in a django-q2 worker process. Does nothing in the main process
    (django-q2's sync mode runs tasks there, and the web server owns its signals)."""
    if multiprocessing.parent_process() is None:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    pre_execute.connect(_task_started, dispatch_uid="jobs.graceful_stop.started")
    post_execute_in_worker.connect(_task_finished, dispatch_uid="jobs.graceful_stop.finished")
