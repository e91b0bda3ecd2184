"""Following a run from the CLI: a line per task state change, then the result."""

import asyncio
import contextlib

from temporalio.client import WorkflowHandle

from magsag.cli.console import err_console, info, print_json
from magsag.cli.live import LiveView
from magsag.cli.render import gate_line, result_json, run_summary, task_line, waiting_line
from magsag.cli.runs import read_status
from magsag.contracts.run import GateStatus, RunResult, RunStatus

POLL_SECONDS = 0.5


async def follow_run(handle: WorkflowHandle, quiet: bool = False) -> RunResult:
    """Wait for the run, printing each task's state as it changes.

    The result is awaited directly (a long poll answered the moment the run ends);
    progress comes from the workflow's memo between polls.
    """
    shown: dict[str, tuple] = {}
    live = LiveView() if err_console.is_terminal and not quiet else None

    def show(result: RunResult) -> None:
        if live:
            live.update(result)
        elif not quiet:
            _show_changes(result, shown)

    with live or contextlib.nullcontext():
        outcome = asyncio.ensure_future(handle.result())
        while not outcome.done():
            await asyncio.wait([outcome], timeout=POLL_SECONDS)
            if not outcome.done():
                show((await read_status(handle))[0])
        # Its every task, even those an execution's result leaves packed in its input;
        # and a run cancelled or failed from outside: its last published state.
        result, _ = await read_status(handle)
        show(result)
    return result


def _show_changes(result: RunResult, shown: dict[str, tuple]) -> None:
    for task in result.tasks.values():
        key = (task.status, task.attempts, task.commit, task.stale)
        if shown.get(task.name) != key:
            shown[task.name] = key
            info(task_line(task))
    for gate in result.gates.values():
        if shown.get(gate.id) != (gate.status,) and gate.status != GateStatus.NOT_REACHED:
            shown[gate.id] = (gate.status,)
            info(gate_line(result.run_id, gate))
    if shown.get("waiting_on") != (result.waiting_on,):
        shown["waiting_on"] = (result.waiting_on,)
        if result.waiting_on:
            info(waiting_line(result.waiting_on))


def report(result: RunResult, json_output: bool) -> int:
    """Print the final result; the exit code a waiting command returns."""
    if json_output:
        print_json(result_json(result))
    else:
        for line in run_summary(result):
            print(line, flush=True)
    return 0 if result.status == RunStatus.SUCCEEDED else 1
