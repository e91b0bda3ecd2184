"""What a run's files on this host say about its tasks: the last thing each agent
printed, and whether it has gone quiet (stale). The run's state dir is local to the
host that holds the repository, which is where the CLI normally runs."""

import json
import os
import time
from collections.abc import Collection
from pathlib import Path

from magsag.contracts import run_files
from magsag.contracts.run import RunResult, TaskStatus
from magsag.worker import connection

DEFAULT_STALE_AFTER = 600.0  # seconds without output; MAGSAG_STALE_AFTER overrides


def stale_after() -> float:
    return float(os.environ.get("MAGSAG_STALE_AFTER", DEFAULT_STALE_AFTER))


def run_dir(run_id: str) -> Path:
    return run_files.run_dir(connection.state_dir(), run_id)


def newest_attempts(run_id: str, tasks: Collection[str]) -> dict[str, int]:
    """The newest attempt with a log of each of tasks (a set: looked up per file).

    One listing of the run's directory whatever the number of tasks asked about: a big
    run's holds thousands of files, and each refresh of the live view asks about every
    running task."""
    newest: dict[str, int] = {}
    if not tasks:
        return newest
    try:
        names = os.listdir(run_dir(run_id))
    except OSError:
        return newest
    for name in names:
        owner = run_files.attempt_of(name)
        if owner and owner[0] in tasks and owner[1] > newest.get(owner[0], 0):
            newest[owner[0]] = owner[1]
    return newest


def last_event(run_id: str, task: str, attempt: int | None) -> str:
    """The agent's last event (agent runners), else the last output line of attempt."""
    events = run_files.task_events(run_dir(run_id), task)
    line = _last_line(events)
    if line:
        try:
            return str(json.loads(line).get("text", ""))[:80]
        except ValueError:
            pass
    if attempt is None:
        return ""
    return (_last_line(run_files.attempt_log(run_dir(run_id), task, attempt)) or "")[:80]


def mark_stale(result: RunResult) -> RunResult:
    """Flag running tasks whose agent printed nothing for stale_after() seconds."""
    limit, now = stale_after(), time.time()
    running = {name for name, task in result.tasks.items() if task.status == TaskStatus.RUNNING}
    for task in result.tasks.values():
        task.stale = False
    for name, attempt in newest_attempts(result.run_id, running).items():
        log = run_files.attempt_log(run_dir(result.run_id), name, attempt)
        try:
            result.tasks[name].stale = now - log.stat().st_mtime > limit
        except OSError:  # removed since the listing
            pass
    return result


def _last_line(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = [line for line in f.read().decode(errors="replace").splitlines() if line]
    except OSError:
        return None
    return lines[-1].strip() if lines else None
