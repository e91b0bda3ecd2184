"""The names of a run's files under <state>/runs/<run-id>/, which the activities write
and the CLI and history/ read. Paths only, no I/O.

    run.jsonl                  the run's own record: one JSON object per state change
    <task>.attempt-<n>.log     one attempt's raw output: the agent's, then its checks'
    <task>.jsonl               the events the agent runner parsed, of every attempt
    pull-request.md            the body of the run's pull request, as last delivered
"""

from pathlib import Path

RUNS = "runs"
RUN_LOG = "run.jsonl"
_ATTEMPT, _LOG = ".attempt-", ".log"


def run_dir(state_dir: str | Path, run_id: str) -> Path:
    """Where a run's files go (RunPaths.log_dir)."""
    return Path(state_dir) / RUNS / run_id


def run_log(log_dir: str | Path) -> Path:
    return Path(log_dir) / RUN_LOG


def pull_request_body(log_dir: str | Path) -> Path:
    return Path(log_dir) / "pull-request.md"


def attempt_log(log_dir: str | Path, task: str, attempt: int) -> Path:
    return Path(log_dir) / f"{task}{_ATTEMPT}{attempt}{_LOG}"


def attempt_logs_pattern(task: str) -> str:
    """A glob of the task's attempt logs; attempt_number() tells which really are."""
    return f"{task}{_ATTEMPT}*{_LOG}"


def attempt_of(file_name: str) -> tuple[str, int] | None:
    """The task and attempt whose log this is, or None for another file. A task's name
    may contain ".attempt-" itself: the number follows the last one, so task `a` never
    claims `a.attempt-1.attempt-2.log` (task `a.attempt-1`'s)."""
    if not file_name.endswith(_LOG):
        return None
    task, found, number = file_name[: -len(_LOG)].rpartition(_ATTEMPT)
    return (task, int(number)) if found and task and number.isdecimal() else None


def attempt_number(file_name: str, task: str) -> int | None:
    """The attempt whose log this is when it is task's, else None."""
    owner = attempt_of(file_name)
    return owner[1] if owner and owner[0] == task else None


def task_events(log_dir: str | Path, task: str) -> Path:
    return Path(log_dir) / f"{task}.jsonl"
