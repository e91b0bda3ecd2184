"""The live view on a terminal, updated in place: totals, a progress bar with rate and
ETA, the running tasks (every task in a small run), the latest failures and the gates.

Without a terminal (CI, pipes) the CLI prints one plain line per change instead
(cli/progress.py)."""

from datetime import UTC, datetime

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from magsag.cli.activity_files import last_event, newest_attempts
from magsag.cli.console import err_console
from magsag.cli.overview import SMALL_RUN, overview
from magsag.cli.render import MARKS, failure_lines, gate_line, waiting_line
from magsag.contracts.durations import format_duration
from magsag.contracts.run import GateStatus, RunResult, TaskResult, TaskStatus


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
    """Totals, a progress bar with rate and ETA, then the tasks: every one in a small run
    (SMALL_RUN: it fits a screen and shows what is still to come), else only the running
    ones; then the latest failures with their error, the gates and what the run waits for.
    One pass over the tasks and file reads for the running ones only, whatever the size."""
    now = datetime.now(UTC)
    view = overview(result, now)
    header = Text(
        f"run {result.run_id}  {result.status.value}  {view.done}/{view.total} tasks done  "
        f"cost ${result.usage.cost_usd:.4f}"
    )
    bar = Table.grid(padding=(0, 2))
    percent = 100 * view.done // view.total if view.total else 100
    bar.add_row(
        ProgressBar(total=view.total, completed=view.done, width=40),
        Text(f"{percent}%  {view.pace()}"),
    )
    shown = list(result.tasks.values()) if view.total <= SMALL_RUN else view.running
    tasks = [_table(result.run_id, shown, now)] if shown else []
    failures = [_line(line) for line in failure_lines(view, result.run_id)]
    gates = [
        _line(gate_line(result.run_id, g))
        for g in result.gates.values()
        if g.status != GateStatus.NOT_REACHED
    ]
    notes = [_line(waiting_line(result.waiting_on))] if result.waiting_on else []
    return Group(header, Text(view.tally()), bar, *tasks, *failures, *gates, *notes)


def _table(run_id: str, tasks: list[TaskResult], now: datetime) -> Table:
    table = Table(expand=False, pad_edge=False, box=None, header_style="bold")
    for column in ("task", "state", "attempt", "elapsed", "cost", "last agent event"):
        table.add_column(column, no_wrap=column != "last agent event", overflow="ellipsis")
    running = {t.name for t in tasks if t.status == TaskStatus.RUNNING}
    attempts = newest_attempts(run_id, running)
    for task in tasks:
        end = task.finished_at or now
        elapsed = (
            format_duration((end - task.started_at).total_seconds()) if task.started_at else ""
        )
        state = f"{MARKS[task.status]} {task.status.value}" + (" (stale)" if task.stale else "")
        cost = f"${task.usage.cost_usd:.4f}" if task.usage.cost_usd else ""
        attempt = attempts.get(task.name) if task.name in running else task.attempts
        event = last_event(run_id, task.name, attempt) if task.name in running else ""
        table.add_row(task.name, state, str(attempt or ""), elapsed, cost, event)
    return table


def _line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")
