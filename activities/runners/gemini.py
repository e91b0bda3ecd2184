"""Gemini CLI: `gemini --output-format stream-json [--resume ID] [--model M] [--approval-mode
MODE] [extra] --prompt PROMPT`.

stream-json prints one event per line (packages/core/src/output/types.ts):
  {"type":"init","timestamp":..,"session_id":..,"model":..}
  {"type":"message","role":"user"|"assistant","content":..,"delta":true}
  {"type":"tool_use","tool_name":..,"tool_id":..,"parameters":{..}}
  {"type":"tool_result","tool_id":..,"status":"success"|"error","output":..,"error":{..}}
  {"type":"error","severity":"warning"|"error","message":..}
  {"type":"result","status":"success"|"error","error":{"type","message"},"stats":
      {"total_tokens","input_tokens","output_tokens","cached","input","duration_ms",
      "tool_calls"}}
A fatal error is a result with status "error", then an exit code from the FatalError
classes (packages/core/src/utils/errors.ts): 41 authentication, 42 input, 44 sandbox,
52 config, 53 turn limit, 54 tool execution, 130 cancelled; anything else exits 1. A
missing login is found before the session starts: it is reported on stderr only, with
exit 41 (packages/cli/src/validateNonInterActiveAuth.ts). `input_tokens` includes
`cached`; `input` is the uncached part. stdin must be closed (/dev/null): gemini appends
piped stdin to the prompt. Gemini reports no cost, so it is estimated from PRICES.
"""

from dataclasses import dataclass, field
from typing import Any

from magsag.activities.runners.events import (
    AGENT_AUTH_ERROR,
    AGENT_BAD_ARGUMENTS,
    AGENT_FAILED,
    AGENT_NO_RESULT,
    Outcome,
    Price,
    StreamParser,
    Usage,
    check_keys,
    classify_error,
    clip,
    event,
    failure_from_text,
    options_of,
    parse_prices,
    usage_event,
)
from magsag.contracts.plan import RunnerSpec

DEFAULT_BINARY = "gemini"
# Headless gemini leaves out every tool that needs approval: without auto_edit (or yolo)
# a task cannot edit its worktree.
DEFAULT_APPROVAL_MODE = "auto_edit"
APPROVAL_MODES = {"default", "auto_edit", "yolo", "plan"}
OPTION_KEYS = {"approval_mode", "prices"}

# Exit codes of gemini's FatalError classes, and what they mean for a retry.
EXIT_KINDS = {
    41: (AGENT_AUTH_ERROR, "authentication failed"),
    42: (AGENT_BAD_ARGUMENTS, "invalid input"),
    44: (AGENT_BAD_ARGUMENTS, "sandbox error"),
    52: (AGENT_BAD_ARGUMENTS, "configuration error"),
    53: (AGENT_FAILED, "reached the session turn limit"),
    54: (AGENT_FAILED, "fatal tool execution error"),
}

# USD per 1M tokens (input / cached input / output), prompts up to 200k tokens: ESTIMATES
# from Google's list prices; override or extend with options["prices"].
PRICES: dict[str, Price] = {
    "gemini-2.5-pro": Price(input=1.25, cached_input=0.125, output=10.0),
    "gemini-2.5-flash": Price(input=0.30, cached_input=0.03, output=2.50),
    "gemini-2.5-flash-lite": Price(input=0.10, cached_input=0.01, output=0.40),
    "gemini-3-pro": Price(input=2.0, cached_input=0.20, output=12.0),
}


@dataclass(frozen=True)
class GeminiOptions:
    approval_mode: str | None = DEFAULT_APPROVAL_MODE
    prices: dict[str, Price] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Any) -> "GeminiOptions":
        raw = options_of(spec)
        check_keys(raw, OPTION_KEYS, "gemini")
        mode = raw.get("approval_mode", DEFAULT_APPROVAL_MODE) or None
        if mode is not None and mode not in APPROVAL_MODES:
            choices = sorted(APPROVAL_MODES)
            raise ValueError(f"gemini runner: approval_mode must be one of {choices}")
        return cls(approval_mode=mode, prices=parse_prices(raw.get("prices")))


def build_argv(spec: RunnerSpec, prompt: str, session: str | None = None) -> list[str]:
    """`session`: the session to continue. Headless gemini takes `--resume <uuid>` and
    looks the session up among the project's (its working directory's) recorded chats
    (packages/cli/src/gemini.tsx, utils/sessionUtils.ts); an unknown one exits 42."""
    opts = GeminiOptions.from_spec(spec)
    argv = [*(spec.command or [DEFAULT_BINARY]), "--output-format", "stream-json"]
    if session:
        argv += ["--resume", session]
    if spec.model:
        argv += ["--model", spec.model]
    if opts.approval_mode:
        argv += ["--approval-mode", opts.approval_mode]
    # yargs would read a separate value starting with "-" as a flag; the `=` form never does.
    prompt_args = [f"--prompt={prompt}"] if prompt.startswith("-") else ["--prompt", prompt]
    return [*argv, *spec.args, *prompt_args]


# What gemini prints on stderr when `--resume` finds no such session, then exits 42
# (packages/cli/src/utils/sessionUtils.ts: SessionError).
_NO_SESSION = ("No previous sessions found for this project.", "Invalid session identifier")


def session_lost(session: str, outcome: Outcome, printed: str) -> bool:
    """`--resume ID` of a session gemini does not have (any other exit 42 is a real
    input error, and ends the task)."""
    return (
        not outcome.ok
        and outcome.kind == AGENT_BAD_ARGUMENTS
        and (f'{_NO_SESSION[1]} "{session}"' in printed or _NO_SESSION[0] in printed)
    )


class Parser(StreamParser):
    def __init__(self, spec: RunnerSpec | None = None) -> None:
        opts = GeminiOptions.from_spec(spec) if spec is not None else GeminiOptions()
        super().__init__(getattr(spec, "model", None), {**PRICES, **opts.prices})
        self._session_id: str | None = None
        self._result: dict[str, Any] | None = None
        self._errors: list[str] = []
        self._pending = ""  # assistant deltas, logged as one message

    def handle(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        kind = obj.get("type")
        if kind == "message":
            if obj.get("role") == "assistant":
                self._pending += str(obj.get("content") or "")
            return []
        events = self._flush()
        if kind == "init":
            self._session_id = obj.get("session_id")
            self._model = obj.get("model") or self._model
            text = f"session {self._session_id} model {obj.get('model')}"
            events.append(event("init", text, session_id=self._session_id, model=self._model))
        elif kind == "tool_use":
            name = obj.get("tool_name")
            events.append(event("tool", f"{name} {_params(obj.get('parameters'))}", tool=name))
        elif kind == "tool_result":
            error = obj.get("error") or {}
            detail = error.get("message") or obj.get("output") or ""
            events.append(
                event(
                    "tool",
                    f"tool {obj.get('status')}: {detail}",
                    is_error=obj.get("status") == "error",
                )
            )
        elif kind == "error":
            if obj.get("severity") == "error":
                self._errors.append(str(obj.get("message") or ""))
            events.append(event("error", obj.get("message"), severity=obj.get("severity")))
        elif kind == "result":
            events += self._on_result(obj)
        else:
            events.append(event("raw", f"{kind or 'untyped'} event", type=kind))
        return events

    def _flush(self) -> list[dict[str, Any]]:
        if not self._pending.strip():
            return []
        self._reply, self._pending = self._pending, ""
        return [event("message", self._reply)]

    def _on_result(self, obj):
        self._result, self._saw_result = obj, True
        self._usage = _usage(obj.get("stats"))
        error = obj.get("error") or {}
        text = error.get("message") or self._reply or obj.get("status")
        cost, estimated = self.estimated_cost()
        return [
            event("result", text, is_error=obj.get("status") != "success"),
            usage_event(self._usage, cost, estimated),
        ]

    def outcome(self, exit_code: int) -> Outcome:
        self._flush()
        cost, estimated = self.estimated_cost()
        common = dict(
            usage=self._usage,
            cost_usd=cost,
            cost_estimated=estimated,
            session_id=self._session_id,
            num_turns=None,
        )
        result = self._result
        if result is not None and result.get("status") == "success":
            return Outcome(ok=True, kind=None, message=clip(self._reply), **common)
        by_exit = EXIT_KINDS.get(exit_code)
        if result is not None:
            error = result.get("error") or {}
            text = str(error.get("message") or (self._errors[-1] if self._errors else ""))
            label = f"{error.get('type')}: " if error.get("type") else ""
            kind = (by_exit[0] if by_exit else None) or classify_error(text) or AGENT_FAILED
            return failure_from_text(kind, f"{label}{text or 'result status error'}", text, common)
        text = self._errors[-1] if self._errors else ""
        if by_exit:
            message = f"gemini exited {exit_code} ({by_exit[1]}; the reason is on stderr)"
            return failure_from_text(
                by_exit[0], message + (f": {text}" if text else ""), text, common
            )
        message = f"gemini exited {exit_code} without a result event"
        message += f": {text}" if text else ""
        return failure_from_text(classify_error(text) or AGENT_NO_RESULT, message, text, common)


def _params(params: Any) -> str:
    if not isinstance(params, dict):
        return ""
    for key in ("command", "file_path", "absolute_path", "path", "pattern", "url", "query"):
        if params.get(key):
            return str(params[key])
    return ", ".join(sorted(params))


def _usage(stats: Any) -> Usage:
    stats = stats if isinstance(stats, dict) else {}
    cached = int(stats.get("cached") or 0)
    total_in = int(stats.get("input_tokens") or 0)
    uncached = stats.get("input")
    return Usage(
        input_tokens=int(uncached) if isinstance(uncached, int) else max(total_in - cached, 0),
        output_tokens=int(stats.get("output_tokens") or 0),
        cache_read_tokens=cached,
    )
