"""What the three stand-in CLIs share: which scenario this run plays, what it writes.

Scenarios come from STANDIN_SCENARIO, or STANDIN_SCENARIO_<task> for one task of a run
(MAGSAG_TASK names it). With STANDIN_ONCE_DIR set, a task plays its scenario once and
succeeds afterwards (a rate limit that passes, a flaky agent). With STANDIN_RUNS_FILE
set, every run adds a line with its task's name there; with STANDIN_ARGV_FILE set, a
JSON line with its task, attempt and argv. STANDIN_WRITE and STANDIN_PARTIAL may say
{task} and {attempt}; STANDIN_PARTIAL is a file a rate-limited run writes before the
limit stops it (the session's work so far). A best-of-N judge's run (MAGSAG_CANDIDATES
set) plays STANDIN_SCENARIO_JUDGE if set, and answers STANDIN_JUDGE_ANSWER. With
STANDIN_FORGET_SESSIONS set, a run told to continue a session answers as the CLI does
when it has no such session.
"""

import json
import os
import sys
from pathlib import Path


def judging() -> bool:
    return "MAGSAG_CANDIDATES" in os.environ


def scenario() -> str:
    task = os.environ.get("MAGSAG_TASK", "")
    chosen = (
        (judging() and os.environ.get("STANDIN_SCENARIO_JUDGE"))
        or os.environ.get(f"STANDIN_SCENARIO_{task}")
        or os.environ.get("STANDIN_SCENARIO", "success")
    )
    once_dir = os.environ.get("STANDIN_ONCE_DIR")
    if once_dir and chosen != "success":
        marker = Path(once_dir) / f"{task or 'run'}.played"
        if marker.exists():
            return "success"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return chosen


def answer(default: str) -> str:
    """The final answer: a judge's from STANDIN_JUDGE_ANSWER, else `default`."""
    return (judging() and os.environ.get("STANDIN_JUDGE_ANSWER")) or default


def forgets_sessions() -> bool:
    return bool(os.environ.get("STANDIN_FORGET_SESSIONS"))


def write_target() -> str | None:
    """STANDIN_WRITE, where {task} and {attempt} stand for the task's name and attempt."""
    return _named(os.environ.get("STANDIN_WRITE"))


def partial_work() -> None:
    """What a session did before a rate limit stopped it: STANDIN_PARTIAL, if set."""
    target = _named(os.environ.get("STANDIN_PARTIAL"))
    if target:
        Path(target).write_text("partial work of the interrupted session\n")


def _named(template: str | None) -> str | None:
    if not template:
        return None
    task, attempt = os.environ.get("MAGSAG_TASK", ""), os.environ.get("MAGSAG_ATTEMPT", "")
    return template.replace("{task}", task).replace("{attempt}", attempt)


def record_argv() -> None:
    argv_file = os.environ.get("STANDIN_ARGV_FILE")
    if argv_file:
        line = {
            "task": os.environ.get("MAGSAG_TASK", ""),
            "attempt": os.environ.get("MAGSAG_ATTEMPT", ""),
            "argv": sys.argv[1:],
        }
        with open(argv_file, "a") as f:
            f.write(json.dumps(line) + "\n")


def record_run() -> None:
    runs = os.environ.get("STANDIN_RUNS_FILE")
    if runs:
        with open(runs, "a") as f:
            f.write(os.environ.get("MAGSAG_TASK", "") + "\n")


def huge_text(size: int) -> str:
    """About `size` bytes of text once JSON-encoded, with quotes, newlines and accents
    (escapes) all along, as a transcript or a file dump has."""
    piece = 'a "quoted" word, an accent: \u00e9, a newline\n'
    return piece * max(1, size // (len(json.dumps(piece)) - 2))
