"""`magsag runs list` and `magsag runs describe`: runs from Temporal's records (visibility,
the memo, event histories) and the run's files, never a live query, so they work with no
worker polling and long after a run ended. history/ reads; this module prints."""

import asyncio
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from magsag.cli import activity_files, inputs
from magsag.cli.console import fail, info, print_json
from magsag.cli.describe_text import describe_lines, summary_lines, task_lines
from magsag.cli.options import JsonOpt, RunIdArg
from magsag.cli.overview import SMALL_RUN, STATUS_ORDER
from magsag.cli.runs import described, existing_run, read_status
from magsag.cli.runtime import connect_or_exit, run_sync
from magsag.contracts import remotes
from magsag.contracts.durations import format_span
from magsag.contracts.run import RunResult, RunStatus, TaskStatus
from magsag.history import run_log
from magsag.history.describe import describe_run
from magsag.history.listing import run_rows
from magsag.history.views import RunView

runs_app = typer.Typer(
    help="Past and current runs, from Temporal's records: works with no worker running.",
    no_args_is_help=True,
)

# How task counts read in `runs list` (in STATUS_ORDER): a succeeded task is "ok".
SHORT_LABELS = {TaskStatus.SUCCEEDED: "ok"}


@runs_app.command("list")
def list_runs(
    repo: Annotated[
        str | None, typer.Option(help="Only runs on this repository (a path or a URL).")
    ] = None,
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
        repo_path = None
        if repo is not None:  # a URL is matched as written; a path names its repository's top
            repo_path = repo if remotes.is_url(repo) else inputs.check_repo(Path(repo))
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


async def _list(repo: Path | str | None, status: RunStatus | None, limit: int) -> list[dict]:
    client = await connect_or_exit(start_embedded=False)
    return await run_rows(client, repo, status, limit)


def _tally(counts: dict[str, int]) -> str:
    parts = [
        f"{counts[s.value]} {SHORT_LABELS.get(s, s.value)}"
        for s in STATUS_ORDER
        if counts.get(s.value)
    ]
    return ", ".join(parts) or "-"


TaskNamesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--task",
        help="Only this task: its whole timeline (repeat for more tasks).",
        show_default=False,
    ),
]


@runs_app.command()
def describe(run_id: RunIdArg, task: TaskNamesOpt = None, json_output: JsonOpt = False) -> None:
    """Show a run from its history: its plan, a timeline per task and the critical path.

    The timeline has each attempt with its outcome and error, retry and rate-limit waits,
    checkpoint and WIP commits, worktree removal, merges and conflicts; the critical path
    says where the time went. A run of over 20 tasks is summarized instead: counts, the
    slowest tasks, the latest failures and the critical path; --task NAME gives a task's
    timeline (--json: the view with those tasks only). --json of a big run has every
    task's state, and its attempts where "detailed" (the critical path's). Works while
    the run runs and after it ended."""
    names = list(dict.fromkeys(task or []))  # each once, in the order given
    events = run_log.read(activity_files.run_dir(run_id))
    if events and not asyncio.run(_history_exists(run_id)):
        # The server no longer has the run (retention, a new server): its file does.
        _describe_from_run_log(run_id, events, json_output, names)
        return
    view, result = run_sync(_describe(run_id, names))
    if json_output:
        print_json(view.model_dump(mode="json"))
    elif names:
        _print(task_lines(view, result, names))
    elif len(result.tasks) <= SMALL_RUN:
        _print(describe_lines(view, result))
    else:
        _print(summary_lines(view, result))


async def _history_exists(run_id: str) -> bool:
    client = await connect_or_exit(start_embedded=False)
    return await described(client, run_id) is not None


async def _describe(run_id: str, names: list[str]) -> tuple[RunView, RunResult]:
    """The run's view: of every task for a small run; else read only the histories of
    the tasks named and the critical path's (10,000 histories would take minutes)."""
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result, closed = await read_status(handle)
    _check_tasks(run_id, names, result.tasks)
    every = not names and len(result.tasks) <= SMALL_RUN
    view = await describe_run(client, handle, result, closed, None if every else names)
    if names:
        view.tasks = {name: view.tasks[name] for name in names}
    return view, result


def _check_tasks(run_id: str, names: list[str], known: Collection[str]) -> None:
    for name in names:
        if name not in known:
            raise fail(f"run {run_id} has no task {name}")


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line)


def _describe_from_run_log(
    run_id: str, events: list[dict], json_output: bool, names: list[str]
) -> None:
    """Replay <state>/runs/<run>/run.jsonl: the story without Temporal's history (of the
    tasks named, if any)."""
    end = run_log.run_end(events)
    statuses = end.get("tasks", {})
    if names:
        _check_tasks(run_id, names, set(statuses) | {e.get("task") for e in events})
        events = [e for e in events if e.get("task") in names]
        statuses = {name: s for name, s in statuses.items() if name in names}
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "source": "run.jsonl",
                "status": end.get("status", "unknown"),
                "tasks": statuses,
                "events": events,
            }
        )
        return
    info(f"run {run_id}: the server has no history of it; replaying its run.jsonl")
    start = datetime.fromisoformat(events[0]["at"]) if events else None
    for event in events:
        offset = (datetime.fromisoformat(event["at"]) - start).total_seconds()
        details = {k: v for k, v in event.items() if k not in ("at", "event", "task")}
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if k not in ("tasks", "gates"))
        print(f"+{offset:7.1f}s  {event.get('task', ''):<20} {event['event']:<18} {shown}")
    if end:
        tally = ", ".join(f"{name} {status}" for name, status in statuses.items())
        print(f"run {run_id} {end['status']}: {tally}")
