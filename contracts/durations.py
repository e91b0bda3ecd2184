"""Durations as users write them in plans ("90s", "10m", "2h", "1h30m" or plain seconds)
and as magsag shows them."""

import re
from datetime import datetime

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Return seconds; raise ValueError with a message a user can act on."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(text))
        else:
            raise ValueError(f"bad duration {value!r} (use e.g. 90s, 10m, 2h or seconds)")
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r} (must be positive)")
    return seconds


def format_duration(seconds: float) -> str:
    """Compact and readable: 45s, 1m30s, 30m, 2h, 1h05m."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def format_span(seconds: float | None) -> str:
    """A measured time: 1.25s under a minute, then as format_duration; "-" if unknown."""
    if seconds is None:
        return "-"
    return f"{seconds:.2f}s" if seconds < 60 else format_duration(seconds)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """end - start in seconds, to the millisecond; None when either is unknown."""
    return None if start is None or end is None else round((end - start).total_seconds(), 3)
