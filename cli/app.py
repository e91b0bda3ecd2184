"""The `magsag` command: one sub-app or command per group, and the seeds' `agent` aliases."""

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


def _run() -> None:
    from magsag.cli import run_cmd

    app.command(help=run_cmd.RUN_HELP)(run_cmd.run)


def _control() -> None:
    from magsag.cli import control_cmd

    for command in (control_cmd.status, control_cmd.watch, control_cmd.cancel,
                    control_cmd.resume, control_cmd.approve, control_cmd.reject):  # fmt: skip
        app.command()(command)


def _others() -> None:
    from magsag.cli import demo_cmd, gc_cmd, logs_cmd, pr_cmd, server_cmd

    for command in (pr_cmd.pr, gc_cmd.gc, logs_cmd.logs, server_cmd.server, server_cmd.worker,
                    demo_cmd.demo):  # fmt: skip
        app.command()(command)


# What each command name needs registered: `magsag <name> ...` imports that command's
# module alone (~30 ms less at every start than importing every command's); any other
# first word (none, --help, a typo) gets them all, in the order help lists them.
_GROUPS = [_plan, _runs, _agent, _run, _control, _others]
_GROUP_OF = {
    "plan": _plan, "runs": _runs, "agent": _agent, "run": _run,
    **dict.fromkeys(("status", "watch", "cancel", "resume", "approve", "reject"), _control),
    **dict.fromkeys(("pr", "gc", "logs", "server", "worker", "demo"), _others),
}  # fmt: skip


def _register(argv: list[str]) -> None:
    group = _GROUP_OF.get(argv[1]) if len(argv) > 1 else None
    for register in [group] if group else _GROUPS:
        register()


def main() -> None:
    _register(sys.argv)
    try:
        app()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except ConfigError as err:
        # Every command reaches Temporal through the same configuration: one line for all.
        fail(str(err))
        code = 2
    except KeyboardInterrupt:
        # Commands that follow a run say what becomes of it; this is any other moment.
        print("\ninterrupted; `magsag runs list` shows the runs that started", file=sys.stderr)
        code = 130
    # The Temporal SDK can abort in PyGILState_Release at interpreter exit: flush and
    # leave without running the interpreter's teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
