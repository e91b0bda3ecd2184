"""How `runs describe` reads as text.

A small run (up to SMALL_RUN tasks) shows its plan and every task's timeline; a bigger
one a summary: counts, the slowest tasks, the latest failures and the critical path;
`--task NAME` shows the timelines of the tasks named."""

import heapq
from datetime import UTC, datetime

from magsag.cli.overview import overview
from magsag.cli.render import cost_text, failure_lines, gate_line, task_line
from magsag.contracts.durations import format_span, seconds_between
from magsag.contracts.run import RunResult, TaskStatus
from magsag.history.views import CriticalPath, PathStep, RunView, TaskView

SLOWEST_SHOWN = 10
# A longer critical path shows its first and last steps; its totals count every step.
PATH_ENDS_SHOWN = 5


def describe_lines(view: RunView, result: RunResult) -> list[str]:
    """Every task: the plan, each task's timeline, the critical path."""
    lines = [*_header(view, result), "", "plan:"]
    for task in view.plan["tasks"]:
        lines.append(_plan_line(task))
    for gate in result.gates.values():
        lines.append(gate_line(view.run_id, gate))
    for task in view.tasks.values():
        lines.extend(["", *_timeline(task, result)])
    lines.append("")
    lines.extend(_path_lines(view.critical_path))
    return lines


def summary_lines(view: RunView, result: RunResult) -> list[str]:
    """A big run: counts, the slowest tasks, the latest failures, the critical path."""
    now = view.finished_at or datetime.now(UTC)
    counts = overview(result, now)
    lines = [*_header(view, result), f"tasks: {counts.tally()}"]
    for gate in result.gates.values():
        lines.append(gate_line(view.run_id, gate))
    slowest = heapq.nlargest(
        SLOWEST_SHOWN, (t for t in view.tasks.values() if t.started_at), key=lambda t: _ran(t, now)
    )
    if slowest:
        lines.extend(["", "slowest tasks:"])
        for task in slowest:
            still = " (still running)" if task.finished_at is None else ""
            attempts = result.tasks[task.name].attempts
            tries = f", {attempts} attempts" if attempts > 1 else ""
            lines.append(
                f"  {task.name:<24} ran {format_span(_ran(task, now))}{still}, "
                f"{task.status.value}{tries}"
            )
    if counts.failures:
        lines.extend(["", "failures:", *(f"  {x}" for x in failure_lines(counts, view.run_id))])
    lines.append("")
    lines.extend(_path_lines(view.critical_path, PATH_ENDS_SHOWN))
    lines.extend(["", f"a task's timeline: magsag runs describe {view.run_id} --task NAME"])
    return lines


def task_lines(view: RunView, result: RunResult, names: list[str]) -> list[str]:
    """The tasks named: each one's state, plan entry and timeline, and its step of the
    critical path when it is on it."""
    plan = {task["name"]: task for task in view.plan["tasks"]}
    steps = {step.task: step for step in view.critical_path.steps}
    lines = _header(view, result)
    for name in names:
        head, *timeline = _timeline(view.tasks[name], result)
        lines.extend(["", head, f"  plan: {_plan_entry(plan[name])}", *timeline])
        if name in steps:
            lines.append(f"on the critical path: {_step_line(steps[name])}")
    return lines


def _header(view: RunView, result: RunResult) -> list[str]:
    when = f"started {view.started_at:%Y-%m-%d %H:%M:%S} UTC" if view.started_at else ""
    if view.finished_at:
        when += f", ended after {format_span(view.duration_seconds)}"
    elif view.duration_seconds is not None:
        when += f", running for {format_span(view.duration_seconds)}"
    tasks = len(view.plan["tasks"])
    lines = [
        f"run {view.run_id} {view.status.value} ({view.execution_status} in Temporal)",
        f"plan {view.plan['name']}, {tasks} tasks, on {view.repo} from {view.base}",
        when,
    ]
    if result.error:
        lines.append(f"error: {result.error}")
    if view.usage.cost_usd or view.usage.output_tokens:
        lines.append(f"usage: {cost_text(view.usage)}")
    tip = (view.integration_commit or "")[:10]
    lines.append(f"integration branch {view.integration_branch} at {tip}")
    if view.resumed_from:
        lines.append(f"resumed from run {view.resumed_from}")
    return lines


def _plan_line(task: dict) -> str:
    return f"  {task['name']:<24} {_plan_entry(task)}"


def _plan_entry(task: dict) -> str:
    deps = f"after {', '.join(task['depends_on'])}" if task["depends_on"] else ""
    retries = f"retries {task['retries']}" if task["retries"] else ""
    flags = "" if task["critical"] else "not critical"
    return "  ".join(x for x in (task["runner"], retries, deps, flags) if x)


def _timeline(task: TaskView, result: RunResult) -> list[str]:
    lines = [task_line(result.tasks[task.name])]
    for entry in task.timeline:
        lines.append(f"  {'+' + format_span(entry.offset_seconds):>9}  {entry.text}")
    return lines


def _ran(task: TaskView, now: datetime) -> float:
    """Its task workflow's time, start to close (or now)."""
    return seconds_between(task.started_at, task.finished_at or now) or 0.0


def _path_lines(path: CriticalPath, ends: int | None = None) -> list[str]:
    """The path and a line per step; with ends, a long path's first and last steps."""
    if not path.tasks:
        return ["critical path: none yet (no task has started)"]
    so_far = " so far" if path.steps[-1].in_progress else ""
    chain, lines = path.tasks, []
    for i, step in enumerate(path.steps):
        if not ends or i < ends or i >= len(path.steps) - ends:
            lines.append(f"  {_step_line(step)}")
        elif i == ends:  # the middle of a long path
            hidden = f"... {len(path.steps) - 2 * ends} more ..."
            chain = [*chain[:ends], hidden, *chain[-ends:]]
            lines.append(f"  {hidden}")
    head = f"critical path{so_far}: {' -> '.join(chain)}  ({format_span(path.seconds)})"
    lines.insert(0, head)
    spent = ", ".join(f"{k.replace('_', ' ')} {format_span(v)}" for k, v in path.time.items())
    lines.append(f"where the time went: {spent}")
    return lines


def _step_line(step: PathStep) -> str:
    inner = (
        f"agent {format_span(step.agent_seconds)}, "
        f"retry waits {format_span(step.retry_wait_seconds)}, "
        f"orchestration {format_span(step.overhead_seconds)}"
    )
    merged = {
        TaskStatus.SUCCEEDED: f"merged after {format_span(step.merging_seconds)}",
        TaskStatus.CONFLICTED: f"conflict found after {format_span(step.merging_seconds)}",
    }.get(step.status, f"ended {step.status.value}")
    if step.in_progress:
        merged = "still going"
    return (
        f"{step.task:<24} waited {format_span(step.waiting_seconds)}, "
        f"ran {format_span(step.running_seconds)} ({inner}), {merged}"
    )
