"""Reading what a change left for after commit."""

from jobs.queue import enqueue_event_notify, enqueue_safely


def is_event_notify(callback) -> bool:
    """Is this on-commit callback the hand-over of a job event to the notifications app?"""
    return getattr(callback, "func", None) is enqueue_safely and callback.args[:1] == (enqueue_event_notify,)


def work_callbacks(callbacks: list) -> list:
    """The on-commit callbacks that move the job along: every job event also hands itself to
    the notifications app (jobs.queue.enqueue_event_notify), which these tests do not count."""
    return [c for c in callbacks if not is_event_notify(c)]
