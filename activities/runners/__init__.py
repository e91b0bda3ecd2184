"""Runner adapters: a runner spec and a prompt become an agent's argv, and the agent's
stdout becomes events and an outcome (usage, cost, what kind of failure)."""

from magsag.activities.runners import claude, codex, command, gemini
from magsag.activities.runners.events import Outcome, StreamParser
from magsag.contracts.plan import RunnerSpec

_AGENTS = {"claude": claude, "codex": codex, "gemini": gemini}
_OPTIONS = {
    "claude": claude.ClaudeOptions,
    "codex": codex.CodexOptions,
    "gemini": gemini.GeminiOptions,
}


def build_argv(runner: RunnerSpec, prompt: str, session: str | None = None) -> list[str]:
    """`session`: the agent's own session to continue; a plain command has none."""
    if runner.kind == "command":
        return command.build_argv(runner, prompt)
    return _AGENTS[runner.kind].build_argv(runner, prompt, session)


def new_parser(runner: RunnerSpec) -> StreamParser | None:
    """A parser for an agent CLI's stream; None for a plain command (output is a log)."""
    adapter = _AGENTS.get(runner.kind)
    return adapter.Parser(runner) if adapter else None


def session_lost(runner: RunnerSpec, session: str, outcome: Outcome, printed: str) -> bool:
    """Whether a run that was to continue `session` found no such session (`printed`:
    what the run wrote, stderr included). Narrow on purpose: only the agent's own "no
    such session" answer counts, never another failure."""
    adapter = _AGENTS.get(runner.kind)
    return adapter is not None and adapter.session_lost(session, outcome, printed)


def prompt_on_stdin(runner: RunnerSpec) -> bool:
    """Agent CLIs append piped stdin to their prompt: only plain commands get it."""
    return runner.kind == "command"


def check_spec(runner: RunnerSpec) -> None:
    """Raise ValueError for options the runner's kind does not take."""
    if runner.kind in _OPTIONS:
        _OPTIONS[runner.kind].from_spec(runner)
    elif runner.options:
        raise ValueError(f"a {runner.kind} runner takes no options")
