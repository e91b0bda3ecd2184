"""What every agent adapter shares: usage, the outcome of a run, and the stream parser.

An adapter reads the agent's stdout one line at a time. `StreamParser.feed` turns a line
into zero or more short events for the task's JSONL log (never the transcript), and
`outcome(exit_code)` judges the run once the process has exited (or was killed). The
error texts the agents print are classified here, so that a worker can tell an expired
login (do not retry) from a rate limit (retry after the reset) from a busy API (retry).
"""

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from magsag.contracts.failures import ATTEMPT_FAILURES, FailureKind

SUMMARY_CHARS = 300
MESSAGE_CHARS = 2000

# Outcome kinds (None means success); what each means for retries is in
# contracts/failures.py.
AGENT_FAILED = FailureKind.AGENT_FAILED
AGENT_NO_RESULT = FailureKind.AGENT_NO_RESULT
RATE_LIMITED = FailureKind.RATE_LIMITED
AGENT_AUTH_ERROR = FailureKind.AGENT_AUTH_ERROR
AGENT_BAD_ARGUMENTS = FailureKind.AGENT_BAD_ARGUMENTS
AGENT_API_ERROR = FailureKind.AGENT_API_ERROR


@dataclass(frozen=True)
class Usage:
    """Tokens of one run. `input_tokens` excludes cache reads and writes for every agent."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    kind: str | None
    message: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    cost_estimated: bool = False
    session_id: str | None = None
    rate_limit_reset: datetime | None = None
    num_turns: int | None = None

    @property
    def retryable(self) -> bool:
        """Whether another attempt may do better (contracts/failures.py decides)."""
        return self.kind in ATTEMPT_FAILURES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the log or an ApplicationError's details)."""
        data = asdict(self)
        reset = self.rate_limit_reset
        data["rate_limit_reset"] = reset.isoformat() if reset else None
        return data


def failure_from_text(kind: str, message: str, text: str, common: dict[str, Any]) -> Outcome:
    """A failure whose reset time, for a rate limit, is read from the agent's text."""
    reset = parse_reset(text) if kind == RATE_LIMITED else None
    return failure(kind, message, rate_limit_reset=reset, **common)


def failure(kind: str, message: str, **fields: Any) -> Outcome:
    return Outcome(ok=False, kind=kind, message=clip(message), **fields)


# --- prices -------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. `cached_input` is the cache-read price."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None


def parse_prices(raw: Any) -> dict[str, Price]:
    """`options["prices"]`: {model: {"input": x, "cached_input": y, "output": z, ...}}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("prices must be a mapping of model name to prices")
    prices = {}
    for model, entry in raw.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise ValueError(f"prices[{model!r}] needs at least 'input' and 'output'")
        unknown = entry.keys() - {"input", "output", "cached_input", "cache_write"}
        if unknown:
            raise ValueError(f"prices[{model!r}]: unknown keys {sorted(unknown)}")
        prices[str(model)] = Price(**{k: float(v) for k, v in entry.items()})
    return prices


def find_price(model: str | None, table: dict[str, Price]) -> Price | None:
    """Exact name first, then the longest known prefix ("gpt-5-mini-2025" -> "gpt-5-mini")."""
    if not model:
        return None
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def estimate_cost(usage: Usage, price: Price) -> float:
    cached = price.cached_input if price.cached_input is not None else price.input
    write = price.cache_write if price.cache_write is not None else price.input
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * cached
        + usage.cache_write_tokens * write
    )
    return round(total / 1_000_000, 6)


# --- error classification -----------------------------------------------------------

_RATE = re.compile(
    r"rate[ _-]?limit|\b429\b|too many requests|usage limit|hit your (?:\w+ )?limit"
    r"|(?:session|weekly|daily|5-hour|five[ -]hour|opus|sonnet) limit|quota"
    r"|resource[_ ]exhausted|exhausted your capacity",
    re.I,
)
_AUTH = re.compile(
    r"invalid api key|incorrect api key|api key not valid|/login|not logged in|log ?in again"
    r"|oauth token (?:has )?expired|\b401\b|unauthori[sz]ed|authenticat|missing bearer"
    r"|\b(?:OPENAI|ANTHROPIC|GEMINI|CODEX|GOOGLE)_API_KEY\b|auth method|\b403\b|forbidden",
    re.I,
)
_API = re.compile(
    r"overloaded|\b(?:500|502|503|504|529)\b|internal server error|service unavailable"
    r"|bad gateway|econnreset|econnrefused|etimedout|enotfound|eai_again|socket hang up"
    r"|timed? ?out|timeout|network error|connection (?:reset|refused|error|failed|closed)"
    r"|stream disconnected|high demand|at capacity|fetch failed",
    re.I,
)


def classify_error(text: str) -> str | None:
    """RATE_LIMITED, AGENT_AUTH_ERROR or AGENT_API_ERROR for an agent's error text, else None.

    Rate limits first: "429" and "usage limit" texts often also say "retry".
    """
    if not text:
        return None
    checks = ((RATE_LIMITED, _RATE), (AGENT_AUTH_ERROR, _AUTH), (AGENT_API_ERROR, _API))
    return next((kind for kind, pattern in checks if pattern.search(text)), None)


def kind_for_status(status: Any) -> str | None:
    """An HTTP status an agent reports (Claude's api_error_status)."""
    if not isinstance(status, int):
        return None
    if status == 429:
        return RATE_LIMITED
    if status in (401, 403):
        return AGENT_AUTH_ERROR
    if status >= 500 or status == 408:
        return AGENT_API_ERROR
    return None


# --- reset times --------------------------------------------------------------------

_GRACE = timedelta(minutes=5)  # clock times are printed to the minute or hour
_EPOCH_BAR = re.compile(r"limit reached\|(\d{9,11})")
_AMPM = r"(?:\s*([ap])\.?m\.?)"
_TZ = r"(?:\s*\(([^)]+)\)|\s+(UTC|GMT)\b)?"
_CLOCK = rf"(\d{{1,2}})(?::(\d{{2}}))?{_AMPM}?"
_LEAD = r"(?:resets?|reset at|try again|retry)(?:\s+(?:at|on))?\s+"
_DATE_TIME = re.compile(
    _LEAD
    + r"([A-Z][a-z]{2,8})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?(?:\s+(\d{4}))?,?\s+(?:at\s+)?"
    + _CLOCK
    + _TZ,
    re.I,
)
_TIME = re.compile(_LEAD + _CLOCK + r"(?![\w:])" + _TZ, re.I)
_DURATION_LEAD = re.compile(r"(?:try again|retry|resets?|reset)\s+(?:in|after)\s+", re.I)
_DURATION_PART = re.compile(
    r"\s*(?:,|and)?\s*(\d+(?:\.\d+)?)\s*(milliseconds?|ms|days?|d|hours?|hrs?|h"
    r"|minutes?|mins?|m|seconds?|secs?|s)(?![a-z])",
    re.I,
)
_UNIT_SECONDS = {"ms": 0.001, "d": 86400, "h": 3600, "m": 60, "s": 1}
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()


def parse_reset(text: str, now: datetime | None = None) -> datetime | None:
    """When a rate limit ends, from the texts the agents print; None if they do not say.

    Handles "usage limit reached|1755772800", "resets 3pm (Europe/Berlin)",
    "Try again at 3:28 PM.", "try again at Aug 8th, 2026 12:30 PM",
    "try again in 3 days 6 hours", "Your quota will reset after 1h49m8s",
    "Please retry in 23.5s". Clock times without a zone are local times.
    """
    if not text:
        return None
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if m := _EPOCH_BAR.search(text):
        return datetime.fromtimestamp(int(m.group(1)), UTC)
    if m := _DURATION_LEAD.search(text):
        seconds = _duration(text[m.end() :])
        if seconds is not None:
            return now + timedelta(seconds=seconds)
    if (m := _DATE_TIME.search(text)) and m.group(1)[:3].lower() in _MONTHS:
        month = _MONTHS.index(m.group(1)[:3].lower()) + 1
        year = int(m.group(3)) if m.group(3) else None
        return _at_clock(
            now, m.group(4, 5, 6), m.group(7) or m.group(8), month, int(m.group(2)), year
        )
    if (m := _TIME.search(text)) and (m.group(2) or m.group(3)):
        return _at_clock(now, m.group(1, 2, 3), m.group(4) or m.group(5))
    return None


def _duration(text: str) -> float | None:
    total, pos, found = 0.0, 0, False
    while m := _DURATION_PART.match(text, pos):
        unit = m.group(2).lower()
        key = "ms" if unit == "ms" or unit.startswith("milli") else unit[:1]
        total += float(m.group(1)) * _UNIT_SECONDS[key]
        pos, found = m.end(), True
    return total if found else None


def _at_clock(now, clock, tz_name, month=None, day=None, year=None) -> datetime | None:
    hour, minute, ampm = int(clock[0]), int(clock[1] or 0), (clock[2] or "").lower()
    if ampm:
        hour = hour % 12 + (12 if ampm == "p" else 0)
    if hour > 23 or minute > 59:
        return None
    tz = _zone(tz_name)
    local_now = now.astimezone(tz) if tz else now.astimezone()
    try:
        at = local_now.replace(
            year=year or local_now.year,
            month=month or local_now.month,
            day=day or local_now.day,
            hour=hour,
            minute=minute,
            second=0,
            microsecond=0,
        )
    except ValueError:
        return None
    # A time already past is tomorrow's (or next year's, for a date without a year).
    if at < local_now - _GRACE:
        if month is None:
            at += timedelta(days=1)
        elif year is None:
            at = at.replace(year=at.year + 1)
    return at.astimezone(UTC)


def _zone(name: str | None):
    if not name:
        return None
    if name.upper() in ("UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- log events and the parser base -------------------------------------------------


def clip(text: Any, limit: int = MESSAGE_CHARS) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event(kind: str, text: Any, **fields: Any) -> dict[str, Any]:
    """One line of the task's JSONL log: a kind, a one-line summary, a few fields."""
    summary = " ".join(str(text or "").split())
    return {"kind": kind, "text": clip(summary, SUMMARY_CHARS), **fields}


def usage_event(usage: Usage, cost: float | None, estimated: bool) -> dict[str, Any]:
    text = (
        f"in {usage.input_tokens} out {usage.output_tokens} "
        f"cache_read {usage.cache_read_tokens} cache_write {usage.cache_write_tokens}"
    )
    if cost is not None:
        text += f" ${cost:.4f}" + (" (estimated)" if estimated else "")
    return event("usage", text, **usage.to_dict(), cost_usd=cost, cost_estimated=estimated)


def epoch_to_datetime(value: Any) -> datetime | None:
    """`resetsAt` / `resets_at` fields: epoch seconds (or milliseconds)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    if value > 10**11:
        value /= 1000
    return datetime.fromtimestamp(value, UTC)


class StreamParser:
    """Feed stdout lines in order; ask for the outcome after the process has ended."""

    def __init__(self, model: str | None = None, prices: dict[str, Price] | None = None) -> None:
        self._saw_result = False
        self._model = model
        self._prices = prices or {}
        self._usage = Usage()
        self._reply = ""  # the agent's final answer, in full

    @property
    def reply(self) -> str:
        """The agent's final answer: its result text, or its last message."""
        return self._reply

    def estimated_cost(self) -> tuple[float | None, bool]:
        """(cost, estimated) from the price table, for agents that report only tokens."""
        price = find_price(self._model, self._prices)
        return (estimate_cost(self._usage, price), True) if price else (None, False)

    @property
    def saw_result(self) -> bool:
        """The agent printed its final result: the run may be judged and the process killed."""
        return self._saw_result

    def feed(self, line: str) -> list[dict[str, Any]]:
        line = line.strip()
        if not line:
            return []
        try:
            obj = json.loads(line)
        except ValueError:
            return [event("raw", line)]
        if not isinstance(obj, dict):
            return [event("raw", line)]
        return self.handle(obj)

    def handle(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def outcome(self, exit_code: int) -> Outcome:
        raise NotImplementedError


def options_of(spec: Any) -> dict[str, Any]:
    """The runner's `options` mapping, whether or not RunnerSpec has the field yet."""
    options = getattr(spec, "options", None) or {}
    if not isinstance(options, dict):
        raise ValueError("runner options must be a mapping")
    return options


def check_keys(options: dict[str, Any], allowed: set[str], runner: str) -> None:
    unknown = options.keys() - allowed
    if unknown:
        raise ValueError(f"{runner} runner: unknown options {sorted(unknown)}")


def str_list(value: Any, name: str) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{name} must be a list of strings or a comma-separated string")
