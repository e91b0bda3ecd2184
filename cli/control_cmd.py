"""Commands on a run that exists: `status`, `watch`, `cancel`."""

import asyncio
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from magsag.cli.console import fail, info, print_json
from magsag.cli.progress import follow_run, read_status
from magsag.cli.render import result_json, run_summary, task_line
from magsag.cli.runtime import connect_or_exit, worker_if_needed
from magsag.contracts import constants as C
from magsag.contracts.run import RunResult, RunStatus
from magsag.worker import connection

RunIdArg = Annotated[str, typer.Argument(help="Run id printed by `magsag run`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def status(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Show a run's state and each task's status, while it runs or after it ended."""
    result = asyncio.run(_status(run_id))
    if json_output:
        print_json(result_json(result))
        return
    for task in result.tasks.values():
        info(task_line(task))
    for line in run_summary(result):
        print(line)


async def _status(run_id: str) -> RunResult:
    client = await connect_or_exit(start_embedded=False)
    result, _ = await read_status(await existing_run(client, run_id))
    return result


def watch(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Follow a run live, as `run` does, until it ends (exit 0 if it succeeded, else 1).

    When no worker polls, this process runs one, so a run whose CLI died goes on."""
    raise typer.Exit(asyncio.run(_watch(run_id, json_output)))


async def _watch(run_id: str, json_output: bool) -> int:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    async with worker_if_needed(client, C.host_queue(connection.hostname())):
        result = await follow_run(handle)
    return report(result, json_output)


def cancel(run_id: RunIdArg) -> None:
    """Cancel a run: running agents are stopped, partial work is committed as WIP on each
    task branch, worktrees are removed, nothing new starts."""
    asyncio.run(_cancel(run_id))


async def _cancel(run_id: str) -> None:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result, closed = await read_status(handle)
    if closed:
        raise fail(f"run {run_id} already ended: {result.status.value}")
    await handle.cancel()
    info(f"cancellation of run {run_id} requested; `magsag watch {run_id}` follows it")


async def existing_run(client: Client, run_id: str) -> WorkflowHandle:
    """The run's workflow handle; exits 2 for a run id the server does not know."""
    handle = client.get_workflow_handle(C.plan_workflow_id(run_id), result_type=RunResult)
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise fail(f"unknown run id {run_id}") from None
        raise
    return handle


def report(result: RunResult, json_output: bool) -> int:
    """Print the final result; the exit code a waiting command returns."""
    if json_output:
        print_json(result_json(result))
    else:
        for line in run_summary(result):
            print(line, flush=True)
    return 0 if result.status == RunStatus.SUCCEEDED else 1
