"""`magsag logs`: a task's agent output, or its parsed events, as recorded in the run's
files (history/task_files.py reads them as they grow)."""

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import WorkflowHandle

from magsag.cli.console import fail, info
from magsag.cli.options import RunIdArg
from magsag.cli.progress import POLL_SECONDS
from magsag.cli.runs import existing_run, read_status, run_input_of
from magsag.cli.runtime import connect_or_exit
from magsag.contracts import constants as C
from magsag.contracts import remotes
from magsag.contracts.run import FINISHED_TASK_STATUSES, RunInput, RunResult, TaskStatus
from magsag.history.task_files import TaskFiles
from magsag.worker import connection


def logs(
    run_id: RunIdArg,
    task: Annotated[
        str,
        typer.Argument(help="A task of the run's plan; <task>--resolve: its conflict resolver."),
    ],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new output until the task or run ends."),
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(help="Which attempt (default: the latest).")
    ] = None,
    events: Annotated[
        bool, typer.Option("--events", help="The agent's parsed events instead of raw output.")
    ] = False,
) -> None:
    """Print a task's agent output (the latest attempt unless --attempt).

    Raw output comes from <state>/runs/<run>/<task>.attempt-<n>.log; --events shows one
    line per event the agent runner recorded in <task>.jsonl instead."""
    raise typer.Exit(asyncio.run(_logs(run_id, task, follow, attempt, events)))


async def _logs(run_id: str, task: str, follow: bool, attempt: int | None, events: bool) -> int:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    run_input = await run_input_of(handle)
    names = {t.name for t in run_input.plan.tasks}
    owner = task if task in names else task.removesuffix(C.RESOLVE_SUFFIX)  # a resolver's
    if owner not in names:
        raise fail(f"run {run_id} has no task {task}")
    if attempt is not None and attempt < 1:
        raise fail(f"--attempt {attempt}: attempts count from 1")
    # A run on a URL keeps each task's output on the host that ran it.
    files = TaskFiles(Path(remotes.resolve(run_input.paths.log_dir, connection.state_dir())), task)
    known = files.attempts()
    if attempt is not None and attempt not in known and not follow:
        listed = ", ".join(map(str, known)) or "none yet"
        raise fail(f"task {task} of run {run_id} has no attempt {attempt} (attempts: {listed})")
    if not follow:
        if not known:
            result, _ = await read_status(handle)
            why = _no_output_reason(run_input, result, owner)
            raise fail(f"task {task} of run {run_id} has no output: {why}", code=1)
        _show(files, attempt or known[-1], events, only=attempt or known[-1])
        return 0
    await _follow(handle, files, owner, attempt, events)
    return 0


def _no_output_reason(run_input: RunInput, result: RunResult, task: str) -> str:
    if task in run_input.carried_names():
        return f"it was kept from run {run_input.resumed_from} (see `magsag logs` of that run)"
    status, error = result.tasks[task].status, result.tasks[task].error
    host = result.tasks[task].host
    if remotes.is_url(run_input.paths.repo) and host and host != connection.hostname():
        return f"it ran on host {host}, which keeps its output: run `magsag logs` there"
    if status == TaskStatus.PENDING:
        return "it has not started yet (--follow waits for it)"
    return f"it is {status.value}" + (f": {error}" if error else "")


def _show(files: TaskFiles, attempt: int, events: bool, only: int | None) -> None:
    """Print what was added since the last call: raw output of this attempt, or the
    events of attempt `only` (every attempt when None)."""
    if events:
        for text in files.new_events(only):
            print(text, flush=True)
        return
    data = files.new_output(attempt)
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


async def _follow(
    handle: WorkflowHandle, files: TaskFiles, task: str, fixed: int | None, events: bool
) -> None:
    """Print the task's output as it grows, attempt after attempt, until it ends."""
    current = fixed or (files.attempts() or [1])[-1]
    while True:
        result, closed = await read_status(handle)
        ended = closed or result.tasks[task].status in FINISHED_TASK_STATUSES
        _show(files, current, events, only=fixed)
        if fixed is None and not events and files.log(current + 1).exists():
            current += 1
            info(f"--- attempt {current} ---")
            continue
        if ended:
            return
        await asyncio.sleep(POLL_SECONDS)
