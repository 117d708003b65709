"""Reading what a change left for after commit."""

from jobs.queue import enqueue_event_notify


def work_callbacks(callbacks: list) -> list:
    """The on-commit callbacks that move the job along: every job event also hands itself to
    the notifications app (jobs.queue.enqueue_event_notify), which these tests do not count."""
    return [c for c in callbacks if getattr(c, "func", None) is not enqueue_event_notify]
