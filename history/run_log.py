"""The run's own record, run.jsonl (appended by activities/run_log.py), read back: the
story of a run whose history the server no longer has."""

import json
from pathlib import Path

from magsag.contracts import run_files


def read(log_dir: str | Path) -> list[dict]:
    path = run_files.run_log(log_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_end(events: list[dict]) -> dict:
    """The record's run_finished line; {} while the run has not ended."""
    return next((e for e in reversed(events) if e["event"] == "run_finished"), {})
