"""A run at a glance, for the live views and `runs describe`: counts by status, progress
with rate and ETA, the running tasks and the latest failures.

overview() takes one pass over the run's tasks, so a view of a 10,000-task run costs
the same per refresh as reading its status; what it keeps is bounded by the running
tasks (at most the concurrency) and FAILURES_SHOWN.
"""

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from magsag.contracts.durations import format_duration
from magsag.contracts.run import (
    FAILED_TASK_STATUSES,
    FINISHED_TASK_STATUSES,
    RunResult,
    RunStatus,
    TaskResult,
    TaskStatus,
)

# Up to this many tasks a view lists every task; beyond, only the running ones and the
# failures (a screen holds about this many rows).
SMALL_RUN = 20
FAILURES_SHOWN = 10
RATE_SAMPLE = 100  # finishes the rate of a running run is measured over
# How counts read, in this order.
STATUS_ORDER = [
    TaskStatus.SUCCEEDED,
    TaskStatus.RUNNING,
    TaskStatus.PENDING,
    TaskStatus.FAILED,
    TaskStatus.CONFLICTED,
    TaskStatus.CANCELLED,
    TaskStatus.SKIPPED,
]


@dataclass
class Overview:
    total: int
    done: int = 0
    counts: dict[TaskStatus, int] = field(default_factory=dict)
    running: list[TaskResult] = field(default_factory=list)  # the longest-running first
    failures: list[TaskResult] = field(default_factory=list)  # the latest FAILURES_SHOWN
    failed: int = 0  # failures in all
    rate: float | None = None  # tasks per second (_rate)
    eta_seconds: float | None = None  # while running, at the current rate

    def tally(self) -> str:
        """The counts in STATUS_ORDER: "5 succeeded, 2 running, 1 failed"."""
        return ", ".join(f"{self.counts[s]} {s.value}" for s in STATUS_ORDER if self.counts.get(s))

    def pace(self) -> str:
        """The rate and, while the run goes on, the ETA: "2.5 tasks/s, ETA 1h05m"."""
        rate = rate_text(self.rate) if self.rate else "no task finished yet"
        if self.eta_seconds is not None:
            return f"{rate}, ETA {format_duration(self.eta_seconds)}"
        return rate

    def more_failures(self) -> int:
        return self.failed - len(self.failures)


def overview(result: RunResult, now: datetime) -> Overview:
    view = Overview(total=len(result.tasks))
    failures: list[TaskResult] = []
    finishes: list[datetime] = []
    ended = result.status != RunStatus.RUNNING
    end = (result.finished_at if ended else None) or now
    start = result.started_at
    for task in result.tasks.values():
        view.counts[task.status] = view.counts.get(task.status, 0) + 1
        if task.status == TaskStatus.RUNNING:
            view.running.append(task)
        elif task.status in FAILED_TASK_STATUSES:
            failures.append(task)
        # Tasks carried from a resumed run finished before this run started: not its pace.
        if start and task.finished_at and task.finished_at >= start:
            finishes.append(task.finished_at)
    view.done = sum(view.counts.get(s, 0) for s in FINISHED_TASK_STATUSES)
    view.running.sort(key=lambda t: t.started_at or end)
    view.failed = len(failures)
    view.failures = heapq.nlargest(FAILURES_SHOWN, failures, key=lambda t: _when(t, end))
    view.rate = _rate(finishes, start, end, ended)
    if not ended and view.rate:
        view.eta_seconds = (view.total - view.done) / view.rate
    return view


def _rate(
    finishes: list[datetime], start: datetime | None, end: datetime, ended: bool
) -> float | None:
    """Tasks per second: of the whole run once it ended; while it runs, of its last
    RATE_SAMPLE finishes over the time since the finish before them, so the rate follows
    the run's pace now (after a wait for an approval, say) and falls while nothing
    finishes. None before any task finished."""
    if not finishes or start is None:
        return None
    since, count = start, len(finishes)
    if not ended and count > RATE_SAMPLE:
        since, count = heapq.nlargest(RATE_SAMPLE + 1, finishes)[-1], RATE_SAMPLE
    seconds = (end - since).total_seconds()
    return count / seconds if seconds > 0 else None


def rate_text(per_second: float) -> str:
    if per_second >= 1:
        return f"{per_second:.1f} tasks/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.1f} tasks/min"
    return f"{per_second * 3600:.1f} tasks/h"


def _when(task: TaskResult, end: datetime) -> float:
    return (task.finished_at or task.started_at or end).timestamp()
