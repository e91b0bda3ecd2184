"""The `magsag` command: one sub-app or command per group, and the seeds' `agent` aliases."""

import importlib
import os
import sys

import typer

from magsag.cli.console import fail
from magsag.worker.connection import ConfigError

app = typer.Typer(
    name="magsag",
    help="Run a plan of AI coding-agent tasks on one git repository, in parallel and "
    "durably, on Temporal. Start with `magsag demo`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    # A group even when one command is registered (below): typer would make that
    # command the whole program.
    pass


def _plan() -> None:
    from magsag.cli import plan_cmd

    app.add_typer(plan_cmd.app, name="plan")


def _runs() -> None:
    from magsag.cli import runs_cmd

    app.add_typer(runs_cmd.runs_app, name="runs")


def _agent() -> None:
    from magsag.cli import plan_cmd, run_cmd

    agent_app = typer.Typer(
        help="The seeds' command names: `agent plan` is `plan show`, `agent exec` is `run`.",
        no_args_is_help=True,
    )
    agent_app.command("plan")(plan_cmd.show)
    agent_app.command("exec", help=run_cmd.RUN_HELP)(run_cmd.run)
    app.add_typer(agent_app, name="agent")


# The commands, in the order help lists them, and the module of magsag.cli that defines
# each: `magsag <command> ...` imports that module alone (~30 ms less at every start than
# importing every command's); any other first word (none, --help, a typo) gets them all.
_COMMANDS = {
    "run": "run_cmd",
    **dict.fromkeys(("status", "watch", "cancel", "resume", "approve", "reject"), "control_cmd"),
    "pr": "pr_cmd", "gc": "gc_cmd", "logs": "logs_cmd",
    "server": "server_cmd", "worker": "server_cmd", "demo": "demo_cmd",
}  # fmt: skip
_GROUPS = {"plan": _plan, "runs": _runs, "agent": _agent}


def _command(name: str) -> None:
    module = importlib.import_module(f"magsag.cli.{_COMMANDS[name]}")
    # `run` says more than its docstring's line.
    app.command(help=module.RUN_HELP if name == "run" else None)(getattr(module, name))


def _register(argv: list[str]) -> None:
    first = argv[1] if len(argv) > 1 else None
    if first in _COMMANDS:
        _command(first)
    elif first in _GROUPS:
        _GROUPS[first]()
    else:
        for name in _COMMANDS:
            _command(name)
        for group in _GROUPS.values():
            group()


def run(argv: list[str]) -> int:
    """Run the command argv names; its exit code."""
    _register(argv)
    try:
        app(args=argv[1:], prog_name=os.path.basename(argv[0]))
        return 0
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except ConfigError as err:
        # Every command reaches Temporal through the same configuration: one line for all.
        fail(str(err))
        return 2
    except KeyboardInterrupt:
        # Commands that follow a run say what becomes of it; this is any other moment.
        print("\ninterrupted; `magsag runs list` shows the runs that started", file=sys.stderr)
        return 130
