"""The live view on a terminal: a table updated in place, with a progress bar and totals.

Without a terminal (CI, pipes) the CLI prints one plain line per change instead
(cli/progress.py)."""

from datetime import UTC, datetime

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from magsag.cli.activity_files import current_attempt, last_event
from magsag.cli.console import err_console
from magsag.cli.render import MARKS, gate_line, waiting_line
from magsag.contracts.durations import format_duration
from magsag.contracts.run import FINISHED_TASK_STATUSES, GateStatus, RunResult, TaskStatus


class LiveView:
    def __init__(self) -> None:
        self._live = Live(console=err_console, refresh_per_second=4, transient=False)

    def __enter__(self) -> "LiveView":
        self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._live.__exit__(*exc)

    def update(self, result: RunResult) -> None:
        self._live.update(render(result))


def render(result: RunResult) -> Group:
    now = datetime.now(UTC)
    table = Table(expand=False, pad_edge=False, box=None, header_style="bold")
    for column in ("task", "state", "attempt", "elapsed", "cost", "last agent event"):
        table.add_column(column, no_wrap=column != "last agent event", overflow="ellipsis")
    for task in result.tasks.values():
        end = task.finished_at or now
        elapsed = (
            format_duration((end - task.started_at).total_seconds()) if task.started_at else ""
        )
        state = f"{MARKS[task.status]} {task.status.value}" + (" (stale)" if task.stale else "")
        cost = f"${task.usage.cost_usd:.4f}" if task.usage.cost_usd else ""
        running = task.status == TaskStatus.RUNNING
        event = last_event(result.run_id, task.name) if running else ""
        attempt = current_attempt(result.run_id, task.name) if running else task.attempts
        table.add_row(task.name, state, str(attempt or ""), elapsed, cost, event)
    done = sum(t.status in FINISHED_TASK_STATUSES for t in result.tasks.values())
    total = len(result.tasks)
    header = Text(
        f"run {result.run_id}  {result.status.value}  {done}/{total} tasks done  "
        f"cost ${result.usage.cost_usd:.4f}"
    )
    gates = [
        Text(gate_line(result.run_id, g))
        for g in result.gates.values()
        if g.status != GateStatus.NOT_REACHED
    ]
    notes = [Text(waiting_line(result.waiting_on))] if result.waiting_on else []
    return Group(header, ProgressBar(total=total, completed=done, width=40), table, *gates, *notes)
