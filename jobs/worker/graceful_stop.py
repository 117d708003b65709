"""A django-q2 cluster that stops on SIGTERM the way a person stopping it means.

`make run`'s Ctrl-C (honcho), `systemctl stop` and `kill -TERM -<pgid>` signal every process
of the cluster at once. django-q2 leaves SIGTERM at its default action in its sentinel and
worker processes, so they died on the spot: a job mid-step kept its lease until recovery
noticed, the dispatcher's lease went stale before a successor could take over, and the main
process, whose orderly stop waits on the dead sentinel, hung until it was killed.

Two small hooks make it orderly:
- the sentinel survives SIGTERM (its handler is replaced just before it forks its first
  child), so it lives to do django-q2's own orderly stop when the main process asks: stop
  fetching tasks, let each worker finish its task, save the results, exit;
- each worker process (jobs.apps, on django-q2's post_spawn) handles SIGTERM itself: idle, it
  exits at once; busy, it finishes its task and exits right after it, starting no other. A
  long task asks `stop_requested()`: the dispatcher returns within a tick interval and hands
  over; a job step completes and releases its lease.
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
_exiting = threading.Event()
# django-q2 passes the finished task to its monitor just after post_execute_in_worker: exit
# this long after that signal, once the process is back to waiting for work.
EXIT_DELAY_SECONDS = 0.2


def stop_requested() -> bool:
    """Has this worker process been asked to stop? A long task returns early when it has."""
    return _stop.is_set()


def exit_begun() -> None:
    """The process is running an exit hook: a SIGTERM now only waits for it (raising
    SystemExit in the middle of one would cut it short). `exit_ended()` when it is done."""
    _exiting.set()


def exit_ended() -> None:
    """The exit hook is done: a SIGTERM ends the process again."""
    _exiting.clear()


def _on_sigterm(signum, frame):
    _stop.set()
    if not _busy.is_set() and not _exiting.is_set():
        sys.exit(0)


def _task_started(sender, **kwargs):
    if _stop.is_set():
        # A task taken from the queue after the stop was asked for is not started; the broker
        # hands it out again (django-q2 delivers at least once).
        sys.exit(0)
    _busy.set()


def _task_finished(sender, **kwargs):
    _busy.clear()
    if _stop.is_set():
        # In a whole-cluster stop the sentinel's STOP ends this process anyway; a worker
        # signalled on its own has only this to end it.
        exit_soon = threading.Timer(EXIT_DELAY_SECONDS, os.kill, args=(os.getpid(), signal.SIGTERM))
        exit_soon.daemon = True
        exit_soon.start()


def graceful_stop_install() -> None:
    """Take over SIGTERM in a django-q2 worker process. Does nothing in the main process
    (django-q2's sync mode runs tasks there, and the web server owns its signals)."""
    if multiprocessing.parent_process() is None:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    pre_execute.connect(_task_started, dispatch_uid="jobs.graceful_stop.started")
    post_execute_in_worker.connect(_task_finished, dispatch_uid="jobs.graceful_stop.finished")


def _on_sentinel_sigterm(signum, frame):
    # The main process asks the sentinel to stop; this only remembers the request, so that a
    # worker the sentinel spawns from now on (replacing one that exited) starts stopped.
    _stop.set()


def _before_fork() -> None:
    # Of our processes only django-q2's sentinel forks from inside a multiprocessing child
    # (its pusher, monitor and workers). Its children inherit the handler: the pusher and
    # monitor are stopped by the sentinel, and each worker installs its own.
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGTERM, _on_sentinel_sigterm)


def sentinel_shield_install() -> None:
    """Register, once per process (jobs.apps), the hook that keeps the sentinel alive."""
    os.register_at_fork(before=_before_fork)
