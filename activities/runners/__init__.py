"""Runner adapters: turn (runner spec, prompt) into the argv of an agent process."""

from magsag.activities.runners import command
from magsag.contracts.plan import RunnerSpec


def build_argv(runner: RunnerSpec, prompt: str) -> list[str]:
    if runner.kind == "command":
        return command.build_argv(runner, prompt)
    raise ValueError(f"unsupported runner kind {runner.kind!r}")
