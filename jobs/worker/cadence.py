"""When a running response is checked next: the cadence every poll schedules by."""

from __future__ import annotations

import math
import random

from django.conf import settings


def poll_delay(*, age: float, watched: bool = False) -> float:
    """Seconds until the next check of a response `age` seconds old.

    The checks sit on a grid counted from the response's start: every POLL_FIRST_SECONDS
    during its first POLL_FAST_SECONDS (a report that finishes early is caught within
    seconds), at POLL_FAST_SECONDS itself, then every POLL_MAX_SECONDS. A grid rather than a
    delay from the last check, so lateness (a busy worker, the jitter) never adds up into
    extra checks: a 2-minute response costs 10 retrieves with the defaults. Each check comes
    up to POLL_JITTER of its interval late, never early; a point less than half a first
    interval away (an early check, after a webhook) is skipped. A response `watched` through
    its stream (stream_watch) is checked every POLL_STREAMED_SECONDS in that first part
    instead: the stream says when it ends, the checks are a safety net."""
    point, gap = grid_point(age=age, watched=watched)
    return point - age + random.uniform(0, settings.POLL_JITTER * gap)


def grid_point(*, age: float, watched: bool = False) -> tuple[float, float]:
    """The grid point of the next check after a check at `age` (seconds from the response's
    start, without jitter), and the interval it ends."""
    # Intervals of at least 0.1 s: a zero from the environment must not spin this loop.
    first = settings.POLL_STREAMED_SECONDS if watched else settings.POLL_FIRST_SECONDS
    first, slow = max(first, 0.1), max(settings.POLL_MAX_SECONDS, 0.1)
    fast = settings.POLL_FAST_SECONDS
    point, gap = 0.0, first
    while point - age < min(gap, first) / 2:
        if point + first < fast:
            point, gap = point + first, first
        elif point < fast:
            point, gap = fast, fast - point
        else:
            point, gap = fast + (math.floor((max(age, point) - fast) / slow) + 1) * slow, slow
    return point, gap
