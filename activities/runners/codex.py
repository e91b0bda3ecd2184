"""Codex CLI: `codex exec --json [--model M] [--sandbox MODE] [extra] [resume ID] -- PROMPT`.

`--json` prints one event per line (codex-rs/exec/src/exec_events.rs, docs/exec.md):
  {"type":"thread.started","thread_id":..}
  {"type":"turn.started"}
  {"type":"item.started"|"item.updated"|"item.completed","item":{"id":..,"type":
      "agent_message"|"reasoning"|"command_execution"|"file_change"|"mcp_tool_call"|
      "web_search"|"todo_list"|"error", ..}}
  {"type":"turn.completed","usage":{"input_tokens","cached_input_tokens","output_tokens"}}
  {"type":"turn.failed","error":{"message":..}}
  {"type":"error","message":..}          (also the "Reconnecting... n/5" retry notices)
`input_tokens` includes `cached_input_tokens`. A failed turn exits 1; clap rejects bad
arguments with exit 2 before any event. Without a login codex retries five times, then
prints turn.failed "unexpected status 401 Unauthorized: Missing bearer ...". Codex reports
no cost, so it is estimated from PRICES. stdin must be closed (/dev/null): with a prompt
argument, codex appends whatever stdin holds as a <stdin> block. `--` keeps a prompt that
starts with "-" (or is the word "resume") the prompt.
"""

from dataclasses import dataclass, field
from typing import Any

from magsag.activities.runners.events import (
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

DEFAULT_BINARY = "codex"
# `codex exec` is read-only by default: a task could not change its worktree.
DEFAULT_SANDBOX = "workspace-write"
SANDBOX_MODES = {"read-only", "workspace-write", "danger-full-access"}
OPTION_KEYS = {"sandbox", "prices"}
CLAP_USAGE_EXIT = 2

# USD per 1M tokens (input / cached input / output): ESTIMATES from OpenAI's list prices;
# override or extend with options["prices"]. The longest matching prefix wins.
PRICES: dict[str, Price] = {
    "gpt-5": Price(input=1.25, cached_input=0.125, output=10.0),
    "gpt-5-codex": Price(input=1.25, cached_input=0.125, output=10.0),
    "gpt-5-mini": Price(input=0.25, cached_input=0.025, output=2.0),
    "gpt-5-nano": Price(input=0.05, cached_input=0.005, output=0.4),
    "gpt-5.1-codex-mini": Price(input=0.25, cached_input=0.025, output=2.0),
    "o4-mini": Price(input=1.10, cached_input=0.275, output=4.40),
}


@dataclass(frozen=True)
class CodexOptions:
    sandbox: str | None = DEFAULT_SANDBOX
    prices: dict[str, Price] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Any) -> "CodexOptions":
        raw = options_of(spec)
        check_keys(raw, OPTION_KEYS, "codex")
        sandbox = raw.get("sandbox", DEFAULT_SANDBOX) or None
        if sandbox is not None and sandbox not in SANDBOX_MODES:
            raise ValueError(f"codex runner: sandbox must be one of {sorted(SANDBOX_MODES)}")
        return cls(sandbox=sandbox, prices=parse_prices(raw.get("prices")))


def build_argv(spec: RunnerSpec, prompt: str, session: str | None = None) -> list[str]:
    """`session`: the thread to continue (`codex exec [options] resume ID -- PROMPT`; exec's
    options go before the subcommand, where clap takes them whether global or not)."""
    opts = CodexOptions.from_spec(spec)
    argv = [*(spec.command or [DEFAULT_BINARY]), "exec", "--json"]
    if spec.model:
        argv += ["--model", spec.model]
    if opts.sandbox:
        argv += ["--sandbox", opts.sandbox]
    resume = ["resume", session] if session else []
    return [*argv, *spec.args, *resume, "--", prompt]


def session_lost(session: str, outcome: Outcome, printed: str) -> bool:
    """`codex exec resume ID` of a thread codex does not have: it does not fail, it
    starts a new thread (codex-rs/exec/src/lib.rs: no thread id resolved -> thread/start),
    which got only the short "continue" prompt. Its thread.started names another id."""
    return outcome.session_id is not None and outcome.session_id != session


class Parser(StreamParser):
    def __init__(self, spec: RunnerSpec | None = None) -> None:
        opts = CodexOptions.from_spec(spec) if spec is not None else CodexOptions()
        super().__init__(getattr(spec, "model", None), {**PRICES, **opts.prices})
        self._thread_id: str | None = None
        self._completed = False
        self._failed: str | None = None
        self._errors: list[str] = []
        self._saw_any = False

    def handle(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        self._saw_any = True
        kind = obj.get("type")
        if kind == "thread.started":
            self._thread_id = obj.get("thread_id")
            return [event("init", f"thread {self._thread_id}", session_id=self._thread_id)]
        if kind == "turn.started":
            return []
        if kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            return self._item(kind, item) if isinstance(item, dict) else []
        if kind == "turn.completed":
            # One `codex exec` is one turn; its usage is the run's (newer versions report
            # the thread's running total here, so it is taken, never summed).
            self._usage, self._completed, self._saw_result = _usage(obj.get("usage")), True, True
            cost, estimated = self.estimated_cost()
            return [
                event("result", self._reply or "turn completed", is_error=False),
                usage_event(self._usage, cost, estimated),
            ]
        if kind == "turn.failed":
            error = obj.get("error") or {}
            last_error = self._errors[-1] if self._errors else None
            self._failed = str(error.get("message") or last_error or "turn failed")
            self._saw_result = True
            return [event("result", self._failed, is_error=True)]
        if kind == "error":
            self._errors.append(str(obj.get("message") or ""))
            return [event("error", obj.get("message"))]
        return [event("raw", f"{kind or 'untyped'} event", type=kind)]

    def _item(self, phase: str, item: dict[str, Any]) -> list[dict[str, Any]]:
        itype, done = item.get("type"), phase == "item.completed"
        if itype == "agent_message" and done:
            self._reply = str(item.get("text") or "")
            return [event("message", self._reply)]
        if itype == "command_execution":
            if phase == "item.started":
                return [event("tool", f"$ {item.get('command')}", tool="shell")]
            if done:
                code = item.get("exit_code")
                text = f"exit {code}: {item.get('command')}"
                return [event("tool", text, tool="shell", exit_code=code)]
        if itype == "file_change" and done:
            changes = item.get("changes") or []
            paths = ", ".join(f"{c.get('kind')} {c.get('path')}" for c in changes)
            return [event("tool", f"edit {item.get('status')}: {paths}", tool="file_change")]
        if itype == "mcp_tool_call" and done:
            name = f"{item.get('server')}.{item.get('tool')}"
            return [event("tool", f"{name} {item.get('status')}", tool=name)]
        if itype == "web_search" and done:
            return [event("tool", f"search {item.get('query')}", tool="web_search")]
        if itype == "error" and done:  # non-fatal warnings (config, model reroute, ...)
            return [event("error", item.get("message"), fatal=False)]
        return []

    def outcome(self, exit_code: int) -> Outcome:
        cost, estimated = self.estimated_cost()
        common = dict(
            usage=self._usage,
            cost_usd=cost,
            cost_estimated=estimated,
            session_id=self._thread_id,
            num_turns=1 if self._saw_result else None,
        )
        if self._completed and self._failed is None:
            return Outcome(ok=True, kind=None, message=clip(self._reply), **common)
        if self._failed is not None:
            text = self._failed
            kind = classify_error(text) or AGENT_FAILED
            return failure_from_text(kind, text, text, common)
        text = self._errors[-1] if self._errors else ""
        if not self._saw_any and exit_code == CLAP_USAGE_EXIT:
            message = "codex rejected its arguments (exit 2; the reason is on stderr)"
            return failure_from_text(AGENT_BAD_ARGUMENTS, message, "", common)
        message = f"codex exited {exit_code} without turn.completed"
        message += f": {text}" if text else ""
        return failure_from_text(classify_error(text) or AGENT_NO_RESULT, message, text, common)


def _usage(raw: Any) -> Usage:
    raw = raw if isinstance(raw, dict) else {}
    total = int(raw.get("input_tokens") or 0)
    cached = int(raw.get("cached_input_tokens") or 0)
    return Usage(
        input_tokens=max(total - cached, 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=cached,
    )
