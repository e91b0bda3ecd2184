"""Following a run from the CLI: a line per task state change, then the result."""

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError

from magsag.cli.console import info
from magsag.cli.render import task_line
from magsag.contracts.run import RunResult, RunStatus
from magsag.workflows.plan import PlanWorkflow

POLL_SECONDS = 0.5
QUERY_TIMEOUT = timedelta(seconds=5)


async def follow_run(handle: WorkflowHandle, quiet: bool = False) -> RunResult:
    """Wait for the run, printing each task's state as it changes."""
    shown: dict[str, tuple] = {}
    outcome = asyncio.ensure_future(handle.result())
    while not outcome.done():
        await asyncio.wait([outcome], timeout=POLL_SECONDS)
        if not outcome.done():
            _show_changes(await _snapshot(handle), shown, quiet)
    try:
        result = outcome.result()
    except WorkflowFailureError as err:
        # A cancelled or failed workflow returns no result; its last state still answers.
        result = await _snapshot(handle)
        if result is None:
            raise
        cancelled = isinstance(err.cause, CancelledError)
        result.status = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
    _show_changes(result, shown, quiet)
    return result


async def _snapshot(handle: WorkflowHandle) -> RunResult | None:
    try:
        return await handle.query(PlanWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
    except (RPCError, WorkflowFailureError):
        return None


def _show_changes(result: RunResult | None, shown: dict[str, tuple], quiet: bool) -> None:
    if result is None or quiet:
        return
    for task in result.tasks.values():
        key = (task.status, task.attempts, task.commit)
        if shown.get(task.name) != key:
            shown[task.name] = key
            info(task_line(task))
