"""What the three stand-in CLIs share: which scenario this run plays, what it writes.

Scenarios come from STANDIN_SCENARIO, or STANDIN_SCENARIO_<task> for one task of a run
(MAGSAG_TASK names it). With STANDIN_ONCE_DIR set, a task plays its scenario once and
succeeds afterwards (a rate limit that passes, a flaky agent). With STANDIN_RUNS_FILE
set, every run adds a line with its task's name there.
"""

import json
import os
from pathlib import Path


def scenario() -> str:
    task = os.environ.get("MAGSAG_TASK", "")
    chosen = os.environ.get(f"STANDIN_SCENARIO_{task}") or os.environ.get(
        "STANDIN_SCENARIO", "success"
    )
    once_dir = os.environ.get("STANDIN_ONCE_DIR")
    if once_dir and chosen != "success":
        marker = Path(once_dir) / f"{task or 'run'}.played"
        if marker.exists():
            return "success"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return chosen


def write_target() -> str | None:
    """STANDIN_WRITE, where {task} stands for the task's name."""
    target = os.environ.get("STANDIN_WRITE")
    return target.replace("{task}", os.environ.get("MAGSAG_TASK", "")) if target else None


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
