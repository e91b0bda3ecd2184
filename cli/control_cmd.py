"""Commands on a run that exists: `status`, `watch`, `cancel`."""

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from magsag.cli import inputs
from magsag.cli.console import fail, info, print_json
from magsag.cli.progress import read_status, report
from magsag.cli.render import result_json, run_summary, task_line
from magsag.cli.run_cmd import INTERRUPTED, follow_hosting, start_and_follow
from magsag.cli.runtime import connect_or_exit, worker_if_needed
from magsag.contracts import constants as C
from magsag.contracts.run import GateDecision, RunInput, RunResult, RunStatus, TaskStatus
from magsag.worker import connection
from magsag.workflows.plan import PlanWorkflow

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
    query = f'MagsagResumedFrom = "{run_id}"'
    result.resumed_as = [
        execution.id.removeprefix(C.WORKFLOW_ID_PREFIX)
        async for execution in client.list_workflows(query)
    ]
    return result


def watch(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Follow a run live, as `run` does, until it ends (exit 0 if it succeeded).

    When no worker polls, this process runs one, so a run whose CLI died goes on."""
    raise typer.Exit(asyncio.run(_watch(run_id, json_output)))


async def _watch(run_id: str, json_output: bool) -> int:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result = await follow_hosting(client, handle, run_id, C.host_queue(connection.hostname()))
    return INTERRUPTED if result is None else report(result, json_output)


def cancel(run_id: RunIdArg) -> None:
    """Cancel a run: stop its agents, save partial work as WIP, remove worktrees.

    Nothing new starts; each task's partial work is committed on its task branch."""
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


def resume(
    run_id: RunIdArg,
    task: Annotated[
        str | None,
        typer.Option(help="Resume only this task and what depends on it (it runs again)."),
    ] = None,
    detach: Annotated[bool, typer.Option(help="Return once the new run has started.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Resume a failed or cancelled run, running only what did not succeed.

    A new run of the same plan starts on the old run's integration branch; it runs the
    tasks that did not succeed and what depends on them (with --task: that task and its
    dependents)."""
    new_input = asyncio.run(_resumed_input(run_id, task))
    info(f"resuming run {run_id} as {new_input.run_id}")
    raise typer.Exit(asyncio.run(start_and_follow(new_input, detach, json_output)))


async def _resumed_input(run_id: str, only: str | None) -> RunInput:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result, closed = await read_status(handle)
    if not closed:
        raise fail(f"run {run_id} is still running; cancel it first or wait for it")
    old = await run_input_of(client, handle)
    if only is not None and only not in result.tasks:
        raise fail(f"--task {only}: no such task in run {run_id}")
    if only is None and result.status == RunStatus.SUCCEEDED:
        raise fail(f"run {run_id} succeeded; nothing to resume")
    unfinished = {n for n, t in result.tasks.items() if t.status != TaskStatus.SUCCEEDED}
    rerun = _with_dependents(old, {only} if only else unfinished)
    try:
        tip = inputs.check_base(Path(old.paths.repo), result.integration_branch)[1]
    except inputs.InputError:
        raise fail(f"the integration branch {result.integration_branch} is gone") from None
    try:
        state = inputs.check_state_dir(connection.state_dir())
        root = old.paths.worktree_root
        inputs.check_writable_dir(Path(root), f"worktree root {root} (of run {run_id})")
    except inputs.InputError as err:
        raise fail(str(err)) from None
    new_id = inputs.new_run_id(old.plan.name)
    return old.model_copy(
        update={
            "run_id": new_id,
            "base": result.integration_branch,
            "base_commit": tip,
            "paths": old.paths.model_copy(update={"log_dir": str(state / "runs" / new_id)}),
            "host_queue": C.host_queue(connection.hostname()),
            "resumed_from": run_id,
            "carried": {n: t for n, t in result.tasks.items() if n not in rerun},
        }
    )


async def run_input_of(client: Client, handle: WorkflowHandle) -> RunInput:
    """The input a run was started with: the first event of its history."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [run_input] = await client.data_converter.decode(payloads, [RunInput])
        return run_input
    raise fail(f"run {handle.id} has no history")


def _with_dependents(run_input: RunInput, names: set[str]) -> set[str]:
    """names plus every task that depends on them, directly or not."""
    selected = set(names)
    changed = True
    while changed:
        changed = False
        for task in run_input.plan.tasks:
            if task.name not in selected and selected.intersection(task.depends_on):
                selected.add(task.name)
                changed = True
    return selected


GateOpts = {
    "phase": typer.Option(help="The phase whose approval to give."),
    "task": typer.Option(help="The task whose approval to give."),
    "by": typer.Option(help="Who decides (default: your user name).", envvar="MAGSAG_USER"),
}


def approve(
    run_id: RunIdArg,
    phase: Annotated[str | None, GateOpts["phase"]] = None,
    task: Annotated[str | None, GateOpts["task"]] = None,
    by: Annotated[str | None, GateOpts["by"]] = None,
) -> None:
    """Let a phase or task that waits for approval start.

    With neither --phase nor --task, approves the one approval the run waits for."""
    decision = GateDecision(phase=phase, task=task, by=by or getpass.getuser())
    asyncio.run(_decide(run_id, decision, approving=True))


def reject(
    run_id: RunIdArg,
    phase: Annotated[str | None, GateOpts["phase"]] = None,
    task: Annotated[str | None, GateOpts["task"]] = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the run.")] = None,
    by: Annotated[str | None, GateOpts["by"]] = None,
) -> None:
    """End a waiting phase or task as skipped (its dependents too), recording why."""
    decision = GateDecision(phase=phase, task=task, by=by or getpass.getuser(), reason=reason)
    asyncio.run(_decide(run_id, decision, approving=False))


async def _decide(run_id: str, decision: GateDecision, approving: bool) -> None:
    if decision.phase and decision.task:
        raise fail("name --phase or --task, not both")
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    _, closed = await read_status(handle)
    if closed:
        raise fail(f"run {run_id} already ended")
    update = PlanWorkflow.approve if approving else PlanWorkflow.reject
    # An update is answered by the workflow, so some worker must run it.
    async with worker_if_needed(client, C.host_queue(connection.hostname()), quiet=True):
        try:
            gate = await handle.execute_update(update, decision)
        except WorkflowUpdateFailedError as err:
            raise fail(str(err.cause.message if err.cause else err)) from None
    verb = "approved" if approving else "rejected"
    info(f"{gate.id} {verb} by {gate.by} at {gate.at:%Y-%m-%d %H:%M:%S} UTC")
