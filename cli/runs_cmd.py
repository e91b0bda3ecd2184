"""`magsag runs list` and `magsag runs describe`: runs from Temporal's records (visibility,
the memo, event histories) and the run's files, never a live query, so they work with no
worker polling and long after a run ended. history/ reads; this module prints."""

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from magsag.cli import activity_files, inputs
from magsag.cli.console import fail, info, print_json
from magsag.cli.options import JsonOpt, RunIdArg
from magsag.cli.render import cost_text, gate_line, task_line
from magsag.cli.runs import described, existing_run, read_status
from magsag.cli.runtime import connect_or_exit
from magsag.contracts.durations import format_span
from magsag.contracts.run import RunResult, RunStatus, TaskStatus
from magsag.history import run_log
from magsag.history.describe import build_run_view, fetch_records
from magsag.history.listing import run_rows
from magsag.history.views import CriticalPath, RunView

runs_app = typer.Typer(
    help="Past and current runs, from Temporal's records: works with no worker running.",
    no_args_is_help=True,
)

# How task counts read in `runs list`, in this order.
TALLY_ORDER = [
    (TaskStatus.SUCCEEDED, "ok"),
    (TaskStatus.RUNNING, "running"),
    (TaskStatus.PENDING, "pending"),
    (TaskStatus.FAILED, "failed"),
    (TaskStatus.CONFLICTED, "conflicted"),
    (TaskStatus.CANCELLED, "cancelled"),
    (TaskStatus.SKIPPED, "skipped"),
]


@runs_app.command("list")
def list_runs(
    repo: Annotated[Path | None, typer.Option(help="Only runs on this repository.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only runs in this state: " + ", ".join(RunStatus) + ".")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 20,
    json_output: JsonOpt = False,
) -> None:
    """List runs, newest first: plan, repository, state, task counts, cost, timing."""
    if status is not None and status not in set(RunStatus):
        raise fail(f"--status {status}: must be one of {', '.join(RunStatus)}")
    if limit < 1:
        raise fail(f"--limit {limit}: must be at least 1")
    try:
        repo_path = inputs.check_repo(repo) if repo is not None else None
    except inputs.InputError as err:
        raise fail(str(err)) from None
    rows = asyncio.run(_list(repo_path, status and RunStatus(status), limit))
    if json_output:
        print_json(rows)
        return
    if not rows:
        info("no runs found")
        return
    table = [["RUN ID", "PLAN", "REPO", "STATUS", "TASKS", "COST", "STARTED (UTC)", "DURATION"]]
    for row in rows:
        table.append(
            [
                row["run_id"],
                row["plan"] or "?",
                row["repo"] or "?",
                row["status"],
                _tally(row["tasks"]),
                f"${row['cost_usd']:.4f}",
                row["started_at"][:19].replace("T", " "),
                format_span(row["duration_seconds"]),
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


async def _list(repo: Path | None, status: RunStatus | None, limit: int) -> list[dict]:
    client = await connect_or_exit(start_embedded=False)
    return await run_rows(client, repo, status, limit)


def _tally(counts: dict[str, int]) -> str:
    parts = [f"{counts[s.value]} {label}" for s, label in TALLY_ORDER if counts.get(s.value)]
    return ", ".join(parts) or "-"


@runs_app.command()
def describe(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Show a run's plan, a timeline per task and the critical path, from its history.

    The timeline has each attempt with its outcome and error, retry and rate-limit waits,
    checkpoint and WIP commits, worktree removal, merges and conflicts; the critical path
    says where the time went. Works while the run runs and after it ended."""
    events = run_log.read(activity_files.run_dir(run_id))
    if events and not asyncio.run(_history_exists(run_id)):
        # The server no longer has the run (retention, a new server): its file does.
        _describe_from_run_log(run_id, events, json_output)
        return
    view, result = asyncio.run(_describe(run_id))
    if json_output:
        print_json(view.model_dump(mode="json"))
        return
    for line in describe_lines(view, result):
        print(line)


async def _history_exists(run_id: str) -> bool:
    client = await connect_or_exit(start_embedded=False)
    return await described(client, run_id) is not None


async def _describe(run_id: str) -> tuple[RunView, RunResult]:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result, closed = await read_status(handle)
    records = await fetch_records(client, handle, result, closed)
    return await build_run_view(records, client.data_converter), result


def _describe_from_run_log(run_id: str, events: list[dict], json_output: bool) -> None:
    """Replay <state>/runs/<run>/run.jsonl: the story without Temporal's history."""
    end = run_log.run_end(events)
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "source": "run.jsonl",
                "status": end.get("status", "unknown"),
                "tasks": end.get("tasks", {}),
                "events": events,
            }
        )
        return
    info(f"run {run_id}: the server has no history of it; replaying its run.jsonl")
    start = datetime.fromisoformat(events[0]["at"])
    for event in events:
        offset = (datetime.fromisoformat(event["at"]) - start).total_seconds()
        details = {k: v for k, v in event.items() if k not in ("at", "event", "task")}
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if k not in ("tasks", "gates"))
        print(f"+{offset:7.1f}s  {event.get('task', ''):<20} {event['event']:<18} {shown}")
    if end:
        print(
            f"run {run_id} {end['status']}: "
            + ", ".join(f"{t} {s}" for t, s in end["tasks"].items())
        )


def describe_lines(view: RunView, result: RunResult) -> list[str]:
    """The text form of `runs describe`."""
    when = f"started {view.started_at:%Y-%m-%d %H:%M:%S} UTC" if view.started_at else ""
    if view.finished_at:
        when += f", ended after {format_span(view.duration_seconds)}"
    elif view.duration_seconds is not None:
        when += f", running for {format_span(view.duration_seconds)}"
    lines = [
        f"run {view.run_id} {view.status.value} ({view.execution_status} in Temporal)",
        f"plan {view.plan['name']}, {len(view.tasks)} tasks, on {view.repo} from {view.base}",
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
    lines.append("")
    lines.append("plan:")
    for task in view.plan["tasks"]:
        deps = f"after {', '.join(task['depends_on'])}" if task["depends_on"] else ""
        retries = f"retries {task['retries']}" if task["retries"] else ""
        flags = "" if task["critical"] else "not critical"
        extra = "  ".join(x for x in (task["runner"], retries, deps, flags) if x)
        lines.append(f"  {task['name']:<24} {extra}")
    for gate in result.gates.values():
        lines.append(gate_line(view.run_id, gate))
    for task in view.tasks.values():
        lines.append("")
        lines.append(task_line(result.tasks[task.name]))
        for entry in task.timeline:
            lines.append(f"  {'+' + format_span(entry.offset_seconds):>9}  {entry.text}")
    lines.append("")
    lines.extend(_path_lines(view.critical_path))
    return lines


def _path_lines(path: CriticalPath) -> list[str]:
    if not path.tasks:
        return ["critical path: none yet (no task has started)"]
    so_far = " so far" if path.steps[-1].in_progress else ""
    chain = " -> ".join(path.tasks)
    lines = [f"critical path{so_far}: {chain}  ({format_span(path.seconds)})"]
    for step in path.steps:
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
        lines.append(
            f"  {step.task:<24} waited {format_span(step.waiting_seconds)}, "
            f"ran {format_span(step.running_seconds)} ({inner}), {merged}"
        )
    spent = ", ".join(f"{k.replace('_', ' ')} {format_span(v)}" for k, v in path.time.items())
    lines.append(f"where the time went: {spent}")
    return lines
