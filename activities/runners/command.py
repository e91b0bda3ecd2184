"""The generic `command` runner: an argv list run in the worktree, no shell."""

from magsag.contracts.plan import RunnerSpec

PROMPT_PLACEHOLDER = "{prompt}"


def build_argv(runner: RunnerSpec, prompt: str) -> list[str]:
    """An element that is exactly '{prompt}' becomes the prompt; nothing is interpolated."""
    argv = [prompt if part == PROMPT_PLACEHOLDER else part for part in runner.command]
    return argv + list(runner.args)
