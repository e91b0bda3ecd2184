"""Commands on a run that exists: `status`, `watch`, `cancel`, `resume`, and the approval
gates' `approve` and `reject`."""

import asyncio
import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer
from temporalio.client import WorkflowUpdateFailedError

from magsag.cli.console import fail, info, print_json
from magsag.cli.launch import INTERRUPTED, follow_hosting, start_and_follow
from magsag.cli.options import ByOpt, GateTaskOpt, JsonOpt, PhaseOpt, RunIdArg
from magsag.cli.overview import SMALL_RUN, overview
from magsag.cli.progress import progress_line, report
from magsag.cli.render import run_summary, task_line
from magsag.cli.resumption import resumed_input
from magsag.cli.runs import existing_run, existing_run_on_queue, read_status
from magsag.cli.runtime import connect_or_exit, run_sync, worker_if_needed
from magsag.contracts import constants as C
from magsag.contracts.run import GateDecision, RunResult


def status(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Show a run's state and each task's status, while it runs or after it ended."""
    result = run_sync(_status(run_id))
    if json_output:
        print_json(result)  # the documented --json shape: RunResult's fields
        return
    for line in task_lines(result):
        info(line)
    for line in run_summary(result):
        print(line)


def task_lines(result: RunResult) -> list[str]:
    """A line per task; of a big run, the running and latest failed ones and totals
    (`--json` has every task)."""
    if len(result.tasks) <= SMALL_RUN:
        return [task_line(task) for task in result.tasks.values()]
    view = overview(result, datetime.now(UTC))
    lines = [task_line(task) for task in view.running + view.failures]
    if view.more_failures():
        lines.append(f"… and {view.more_failures()} more failed")
    lines.append(progress_line(result))
    lines.append(f"every task: magsag status {result.run_id} --json")
    return lines


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
    handle, queue = await existing_run_on_queue(client, run_id)
    result = await follow_hosting(client, handle, run_id, queue)
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
    new_input = asyncio.run(resumed_input(run_id, task))
    info(f"resuming run {run_id} as {new_input.run_id}")
    raise typer.Exit(asyncio.run(start_and_follow(new_input, detach, json_output)))


def approve(
    run_id: RunIdArg,
    phase: PhaseOpt = None,
    task: GateTaskOpt = None,
    by: ByOpt = None,
) -> None:
    """Let a phase or task that waits for approval start.

    With neither --phase nor --task, approves the one approval the run waits for."""
    decision = GateDecision(phase=phase, task=task, by=by or getpass.getuser())
    asyncio.run(_decide(run_id, decision, approving=True))


def reject(
    run_id: RunIdArg,
    phase: PhaseOpt = None,
    task: GateTaskOpt = None,
    reason: Annotated[str | None, typer.Option(help="Why; recorded in the run.")] = None,
    by: ByOpt = None,
) -> None:
    """End a waiting phase or task as skipped (its dependents too), recording why."""
    decision = GateDecision(phase=phase, task=task, by=by or getpass.getuser(), reason=reason)
    asyncio.run(_decide(run_id, decision, approving=False))


async def _decide(run_id: str, decision: GateDecision, approving: bool) -> None:
    if decision.phase and decision.task:
        raise fail("name --phase or --task, not both")
    client = await connect_or_exit(start_embedded=False)
    handle, queue = await existing_run_on_queue(client, run_id)
    _, closed = await read_status(handle)
    if closed:
        raise fail(f"run {run_id} already ended")
    from magsag.workflows.plan import PlanWorkflow  # not imported by the other commands

    update = PlanWorkflow.approve if approving else PlanWorkflow.reject
    # An update is answered by the workflow, so some worker must run it.
    async with worker_if_needed(client, queue, quiet=True):
        try:
            gate = await handle.execute_update(update, decision)
        except WorkflowUpdateFailedError as err:
            raise fail(str(err.cause.message if err.cause else err)) from None
    verb = "approved" if approving else "rejected"
    info(f"{gate.id} {verb} by {gate.by} at {gate.at:%Y-%m-%d %H:%M:%S} UTC")
