"""The `magsag` command: one sub-app or command per group, and the seeds' `agent` aliases."""

import os
import sys

import typer

from magsag.cli import (
    control_cmd,
    demo_cmd,
    gc_cmd,
    logs_cmd,
    plan_cmd,
    pr_cmd,
    run_cmd,
    runs_cmd,
    server_cmd,
)
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
agent_app = typer.Typer(
    help="The seeds' command names: `agent plan` is `plan show`, `agent exec` is `run`.",
    no_args_is_help=True,
)
agent_app.command("plan")(plan_cmd.show)
agent_app.command("exec", help=run_cmd.RUN_HELP)(run_cmd.run)

app.add_typer(plan_cmd.app, name="plan")
app.add_typer(runs_cmd.runs_app, name="runs")
app.add_typer(agent_app, name="agent")
app.command(help=run_cmd.RUN_HELP)(run_cmd.run)
app.command()(control_cmd.status)
app.command()(control_cmd.watch)
app.command()(control_cmd.cancel)
app.command()(control_cmd.resume)
app.command()(control_cmd.approve)
app.command()(control_cmd.reject)
app.command()(pr_cmd.pr)
app.command()(gc_cmd.gc)
app.command()(logs_cmd.logs)
app.command()(server_cmd.server)
app.command()(server_cmd.worker)
app.command()(demo_cmd.demo)


def main() -> None:
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
