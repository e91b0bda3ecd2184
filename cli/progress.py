"""Following a run from the CLI: the live view on a terminal, else a line per change and
a line of totals now and then; then the result."""

import asyncio
import contextlib
import time
from datetime import UTC, datetime

from temporalio.client import WorkflowHandle

from magsag.cli.console import err_console, info, print_json
from magsag.cli.live import LiveView
from magsag.cli.overview import SMALL_RUN, overview
from magsag.cli.render import gate_line, run_summary, task_line, waiting_line
from magsag.cli.runs import read_status
from magsag.contracts.run import GateStatus, RunResult, RunStatus, TaskStatus

POLL_SECONDS = 0.5
POLL_SHARE = 0.2
SUMMARY_SECONDS = 60.0


async def follow_run(
    handle: WorkflowHandle, quiet: bool = False, tasks: int | None = None
) -> RunResult:
    """Wait for the run, printing each task's state as it changes.

    The result is awaited directly (a long poll answered the moment the run ends);
    progress comes from the workflow's memo between polls, read no more often than
    every POLL_SECONDS and for at most a fifth of the time (POLL_SHARE: a big run's
    state takes a while to read, and the CLI shares the machine with the server and the
    worker running that run). `tasks`: how many the run has, when known: a result that
    holds them all is the run's whole state, with no more to read.
    """
    changes = Changes()
    live = LiveView() if err_console.is_terminal and not quiet else None

    def show(result: RunResult) -> None:
        if live:
            live.update(result)
        elif not quiet:
            for line in changes.lines(result, time.monotonic()):
                info(line)

    with live or contextlib.nullcontext():
        outcome = asyncio.ensure_future(handle.result())
        pause = POLL_SECONDS
        while not outcome.done():
            await asyncio.wait([outcome], timeout=pause)
            if not outcome.done():
                began = time.monotonic()
                show((await read_status(handle))[0])
                reading = time.monotonic() - began
                pause = max(POLL_SECONDS, reading * (1 / POLL_SHARE - 1))
        # Its every task, even those an execution's result leaves packed in its input;
        # and a run cancelled or failed from outside: its last published state.
        result = None if outcome.exception() else outcome.result()
        if result is None or tasks is None or len(result.tasks) < tasks:
            result, _ = await read_status(handle)
        show(result)
    return result


class Changes:
    """The plain lines of a run followed without a terminal: a line per change of a task,
    a gate or what the run waits for, and every SUMMARY_SECONDS a line of totals with
    rate and ETA.

    A big run (over SMALL_RUN tasks) starts with its totals instead of a line per task:
    a task shows when it runs or changes, so 10,000 pending tasks print nothing."""

    def __init__(self) -> None:
        self.shown: dict[str, tuple] = {}
        self.summary_at: float | None = None

    def lines(self, result: RunResult, now: float) -> list[str]:
        small, lines = len(result.tasks) <= SMALL_RUN, []
        for task in result.tasks.values():
            key = (task.status, task.attempts, task.commit, task.stale)
            before = self.shown.get(task.name)
            if before != key:
                self.shown[task.name] = key
                if before or small or task.status == TaskStatus.RUNNING:
                    lines.append(task_line(task))
        for gate in result.gates.values():
            if self.shown.get(gate.id) != (gate.status,) and gate.status != GateStatus.NOT_REACHED:
                self.shown[gate.id] = (gate.status,)
                lines.append(gate_line(result.run_id, gate))
        if self.shown.get("waiting_on") != (result.waiting_on,):
            self.shown["waiting_on"] = (result.waiting_on,)
            if result.waiting_on:
                lines.append(waiting_line(result.waiting_on))
        if self.summary_at is None and small:
            self.summary_at = now
        if self.summary_at is None or now - self.summary_at >= SUMMARY_SECONDS:
            self.summary_at = now
            lines.append(progress_line(result))
        return lines


def progress_line(result: RunResult) -> str:
    """Totals on one line: "run X running: 120/10000 tasks done (...), 2.5 tasks/s, ETA 1h05m"."""
    view = overview(result, datetime.now(UTC))
    return (
        f"run {result.run_id} {result.status.value}: {view.done}/{view.total} tasks done "
        f"({view.tally()}), {view.pace()}"
    )


def report(result: RunResult, json_output: bool) -> int:
    """Print the final result; the exit code a waiting command returns: 0 when the run
    succeeded and delivered the pull request it was asked for."""
    if json_output:
        print_json(result)  # the documented --json shape: RunResult's fields
    else:
        for line in run_summary(result):
            print(line, flush=True)
    undelivered = result.pull_request is not None and result.pull_request.error is not None
    return 0 if result.status == RunStatus.SUCCEEDED and not undelivered else 1
