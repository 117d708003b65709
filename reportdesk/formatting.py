"""How durations and moments read on every page: one formatter each."""

from __future__ import annotations

import datetime as dt

from django.utils.timesince import timesince, timeuntil


def duration(seconds: float) -> str:
    """A length of time: "42 s", "3 min 05 s", "2 h 07 min", "3 d 4 h"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def span(moment: dt.datetime, now: dt.datetime) -> str:
    """How far `moment` is from `now`: seconds under a minute and a half, else the largest unit."""
    seconds = abs((now - moment).total_seconds())
    if seconds < 90:
        return f"{int(seconds)} s"
    return timesince(moment, now, depth=1) if moment <= now else timeuntil(moment, now, depth=1)
