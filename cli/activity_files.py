"""What a run's files on this host say about its tasks: the last thing each agent
printed, and whether it has gone quiet (stale). The run's state dir is local to the
host that holds the repository, which is where the CLI normally runs."""

import json
import os
import time
from pathlib import Path

from magsag.contracts import run_files
from magsag.contracts.run import RunResult, TaskStatus
from magsag.history.task_files import attempts
from magsag.worker import connection

DEFAULT_STALE_AFTER = 600.0  # seconds without output; MAGSAG_STALE_AFTER overrides


def stale_after() -> float:
    return float(os.environ.get("MAGSAG_STALE_AFTER", DEFAULT_STALE_AFTER))


def run_dir(run_id: str) -> Path:
    return run_files.run_dir(connection.state_dir(), run_id)


def current_attempt(run_id: str, task: str) -> int | None:
    """The attempt a running task is on, from its newest log file."""
    numbers = attempts(run_dir(run_id), task)
    return numbers[-1] if numbers else None


def latest_log(run_id: str, task: str) -> Path | None:
    attempt = current_attempt(run_id, task)
    return None if attempt is None else run_files.attempt_log(run_dir(run_id), task, attempt)


def last_event(run_id: str, task: str) -> str:
    """The agent's last event (agent runners) or output line (plain commands)."""
    events = run_files.task_events(run_dir(run_id), task)
    line = _last_line(events)
    if line:
        try:
            return str(json.loads(line).get("text", ""))[:80]
        except ValueError:
            pass
    log = latest_log(run_id, task)
    return (_last_line(log) or "")[:80] if log else ""


def quiet_seconds(run_id: str, task: str) -> float | None:
    """Seconds since the running task's agent last printed anything."""
    log = latest_log(run_id, task)
    if log is None:
        return None
    return time.time() - log.stat().st_mtime


def mark_stale(result: RunResult) -> RunResult:
    """Flag running tasks whose agent printed nothing for stale_after() seconds."""
    limit = stale_after()
    for task in result.tasks.values():
        quiet = (
            quiet_seconds(result.run_id, task.name) if task.status == TaskStatus.RUNNING else None
        )
        task.stale = quiet is not None and quiet > limit
    return result


def _last_line(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = [line for line in f.read().decode(errors="replace").splitlines() if line]
    except OSError:
        return None
    return lines[-1].strip() if lines else None
