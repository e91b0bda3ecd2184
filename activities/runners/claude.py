"""Claude Code: `claude -p --output-format stream-json --verbose [--resume ID] [flags] -- PROMPT`.

stream-json prints one object per line (`--verbose` is required with -p, or claude exits 1):
  {"type":"system","subtype":"init","session_id":..,"model":..,"permissionMode":..}
  {"type":"assistant","message":{"content":[text | tool_use | thinking blocks]}}
      a refused call is a synthetic one: "error":"rate_limit"|"authentication_failed",
      "is_api_error_message":true, its text the reason ("Not logged in · Please run /login")
  {"type":"user","message":{"content":[tool_result blocks]}}
  {"type":"rate_limit_event","rate_limit_info":{"status":"allowed"|"allowed_warning"|
      "rejected","resetsAt":<epoch s>,"rateLimitType":"five_hour",..}}
  {"type":"result","subtype":"success"|"error_max_turns"|"error_during_execution",
      "is_error":..,"result":..,"api_error_status":..,"session_id":..,"total_cost_usd":..,
      "usage":{input_tokens, output_tokens, cache_creation_input_tokens,
      cache_read_input_tokens},"num_turns":..,"duration_ms":..}
A failed login or a hit limit is still subtype "success", with is_error true, and claude
exits 1. `--` ends the options, so a prompt starting with "-" stays the prompt; stdin must
be closed (/dev/null), or claude adds what it reads there to the prompt.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from magsag.activities.runners.events import (
    AGENT_FAILED,
    AGENT_NO_RESULT,
    RATE_LIMITED,
    Outcome,
    Price,
    StreamParser,
    Usage,
    check_keys,
    classify_error,
    clip,
    epoch_to_datetime,
    event,
    failure,
    kind_for_status,
    options_of,
    parse_prices,
    parse_reset,
    str_list,
    usage_event,
)
from magsag.contracts.plan import RunnerSpec

DEFAULT_BINARY = "claude"
# Without it `claude -p` may not edit files at all; a worktree is a safe place to allow edits.
DEFAULT_PERMISSION_MODE = "acceptEdits"
OPTION_KEYS = {"permission_mode", "allowed_tools", "max_turns", "prices"}

# USD per 1M tokens, list prices: only used when a result carries no total_cost_usd.
PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(input=5.0, output=25.0, cached_input=0.5, cache_write=6.25),
    "claude-opus-4-1": Price(input=15.0, output=75.0, cached_input=1.5, cache_write=18.75),
    "claude-opus-4": Price(input=15.0, output=75.0, cached_input=1.5, cache_write=18.75),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75),
    "claude-sonnet-4": Price(input=3.0, output=15.0, cached_input=0.3, cache_write=3.75),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cached_input=0.1, cache_write=1.25),
    "claude-3-5-haiku": Price(input=0.8, output=4.0, cached_input=0.08, cache_write=1.0),
}

# The headless limit banner, once printed as a *successful* result: "...limit reached|<epoch>".
_LIMIT_BANNER = re.compile(r"limit reached\|\d{9,11}")


@dataclass(frozen=True)
class ClaudeOptions:
    permission_mode: str | None = DEFAULT_PERMISSION_MODE
    allowed_tools: tuple[str, ...] = ()
    max_turns: int | None = None
    prices: dict[str, Price] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Any) -> "ClaudeOptions":
        raw = options_of(spec)
        check_keys(raw, OPTION_KEYS, "claude")
        max_turns = raw.get("max_turns")
        if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
            raise ValueError("claude runner: max_turns must be a positive integer")
        return cls(
            permission_mode=raw.get("permission_mode", DEFAULT_PERMISSION_MODE) or None,
            allowed_tools=str_list(raw.get("allowed_tools"), "allowed_tools"),
            max_turns=max_turns,
            prices=parse_prices(raw.get("prices")),
        )


def build_argv(spec: RunnerSpec, prompt: str, session: str | None = None) -> list[str]:
    """`session`: the session to continue (`--resume`); the prompt is then its next turn."""
    opts = ClaudeOptions.from_spec(spec)
    argv = [*(spec.command or [DEFAULT_BINARY]), "-p", "--output-format", "stream-json"]
    argv.append("--verbose")
    if session:
        argv += ["--resume", session]
    if spec.model:
        argv += ["--model", spec.model]
    if opts.permission_mode:
        argv += ["--permission-mode", opts.permission_mode]
    if opts.allowed_tools:
        # The `=` form: a variadic option given as separate words would swallow what follows.
        argv.append("--allowedTools=" + ",".join(opts.allowed_tools))
    if opts.max_turns is not None:
        argv += ["--max-turns", str(opts.max_turns)]
    return [*argv, *spec.args, "--", prompt]


def session_lost(session: str, outcome: Outcome, printed: str) -> bool:
    """`--resume ID` of a session claude does not have: it prints this on stderr and
    exits 1 before any result (the session is looked up in the working directory's
    project, so a moved or cleaned ~/.claude loses it)."""
    return not outcome.ok and f"No conversation found with session ID: {session}" in printed


class Parser(StreamParser):
    def __init__(self, spec: RunnerSpec | None = None) -> None:
        opts = ClaudeOptions.from_spec(spec) if spec is not None else ClaudeOptions()
        super().__init__(getattr(spec, "model", None), {**PRICES, **opts.prices})
        self._session_id: str | None = None
        self._result: dict[str, Any] | None = None
        self._limit_rejected = False
        self._limit_reset = None
        self._errors: list[str] = []

    def handle(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        self._session_id = obj.get("session_id") or self._session_id
        handler = {
            "system": self._system,
            "assistant": self._assistant,
            "user": self._user,
            "rate_limit_event": self._rate_limit,
            "result": self._on_result,
        }.get(obj.get("type"))
        if handler:
            return handler(obj)
        if obj.get("type") == "stream_event":  # partial deltas (--include-partial-messages)
            return []
        return [event("raw", f"{obj.get('type') or 'untyped'} event", type=obj.get("type"))]

    def _system(self, obj):
        if obj.get("subtype") != "init":
            return [event("raw", f"system {obj.get('subtype')}", type="system")]
        self._model = obj.get("model") or self._model
        text = f"session {obj.get('session_id')} model {obj.get('model')}"
        return [event("init", text, session_id=obj.get("session_id"), model=obj.get("model"))]

    def _assistant(self, obj):
        blocks = _blocks(obj.get("message"))
        if obj.get("error") or obj.get("is_api_error_message"):
            text = " ".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            self._errors.append(text or str(obj.get("error")))
            return [event("error", text or obj.get("error"), error=obj.get("error"))]
        events = []
        for block in blocks:
            if block.get("type") == "text" and block.get("text", "").strip():
                events.append(event("message", block["text"]))
            elif block.get("type") == "tool_use":
                name = block.get("name")
                events.append(event("tool", f"{name} {_tool_input(block.get('input'))}", tool=name))
        return events

    def _user(self, obj):
        events = []
        for block in _blocks(obj.get("message")):
            if block.get("type") == "tool_result":
                failed = bool(block.get("is_error"))
                text = _content_text(block.get("content"))
                label = "tool error" if failed else "tool result"
                events.append(event("tool", f"{label}: {text}", is_error=failed))
        return events

    def _rate_limit(self, obj):
        info = obj.get("rate_limit_info") or {}
        status = info.get("status")
        reset = epoch_to_datetime(info.get("resetsAt", info.get("resets_at")))
        if status == "rejected":
            self._limit_rejected = True
            self._limit_reset = reset or self._limit_reset
        window = info.get("rateLimitType") or ""
        when = f" resets {reset.isoformat()}" if reset else ""
        return [
            event(
                "rate_limit",
                f"{status} {window}{when}".replace("  ", " "),
                status=status,
                resets_at=reset.isoformat() if reset else None,
            )
        ]

    def _on_result(self, obj):
        self._result, self._saw_result = obj, True
        self._usage = _usage(obj.get("usage"))
        self._reply = str(obj.get("result") or "")
        cost, estimated = self._cost()
        text = (
            obj.get("result") or "; ".join(map(str, obj.get("errors") or [])) or obj.get("subtype")
        )
        return [
            event("result", text, is_error=bool(obj.get("is_error")), subtype=obj.get("subtype")),
            usage_event(self._usage, cost, estimated),
        ]

    def _cost(self) -> tuple[float | None, bool]:
        total = (self._result or {}).get("total_cost_usd")
        if isinstance(total, int | float) and not isinstance(total, bool):
            return float(total), False
        return self.estimated_cost()

    def outcome(self, exit_code: int) -> Outcome:
        cost, estimated = self._cost()
        result = self._result
        common = dict(
            usage=self._usage,
            cost_usd=cost,
            cost_estimated=estimated,
            session_id=self._session_id,
            num_turns=(result or {}).get("num_turns"),
        )
        if result is None:
            text = "; ".join(self._errors[-3:])
            kind = (RATE_LIMITED if self._limit_rejected else None) or classify_error(text)
            message = f"claude exited {exit_code} without a result message"
            message += f": {text}" if text else ""
            return self._failed(kind or AGENT_NO_RESULT, message, text, common)
        subtype = result.get("subtype") or "success"
        text = str(result.get("result") or "; ".join(map(str, result.get("errors") or [])))
        if not result.get("is_error") and subtype == "success":
            if _LIMIT_BANNER.search(text):
                return self._failed(RATE_LIMITED, text, text, common)
            # A result is the end of the run: a kill after it (exit -9) does not undo it.
            return Outcome(ok=True, kind=None, message=clip(text), **common)
        kind = (
            kind_for_status(result.get("api_error_status"))
            or (RATE_LIMITED if self._limit_rejected else None)
            or classify_error(text)
            or AGENT_FAILED
        )
        message = text if subtype == "success" else f"{subtype}: {text or 'no result text'}"
        return self._failed(kind, message, text, common)

    def _failed(self, kind, message, text, common) -> Outcome:
        reset = None
        if kind == RATE_LIMITED:
            reset = self._limit_reset or parse_reset(text)
        return failure(kind, message, rate_limit_reset=reset, **common)


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def _tool_input(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    for key in ("command", "file_path", "path", "pattern", "url", "query", "description"):
        if data.get(key):
            return str(data[key])
    return json.dumps(data, ensure_ascii=False)[:200]


def _usage(raw: Any) -> Usage:
    raw = raw if isinstance(raw, dict) else {}

    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else 0

    return Usage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read_tokens=count("cache_read_input_tokens"),
        cache_write_tokens=count("cache_creation_input_tokens"),
    )
