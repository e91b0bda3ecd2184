"""A task's files in its run's directory, read as they grow: each attempt's raw output
and the agent's parsed events (names in contracts/run_files.py)."""

import json
from pathlib import Path

from magsag.contracts import run_files


def attempts(log_dir: Path, task: str) -> list[int]:
    """The task's attempts that have a log file, in order."""
    found = log_dir.glob(run_files.attempt_logs_pattern(task))
    numbers = (run_files.attempt_number(path.name, task) for path in found)
    return sorted(n for n in numbers if n is not None)


class TaskFiles:
    """What was added to a task's files since the last call, for `logs --follow`."""

    def __init__(self, log_dir: Path, task: str) -> None:
        self.log_dir, self.task = log_dir, task
        self.offsets: dict[Path, int] = {}
        self.partial = ""

    def log(self, attempt: int) -> Path:
        return run_files.attempt_log(self.log_dir, self.task, attempt)

    def attempts(self) -> list[int]:
        return attempts(self.log_dir, self.task)

    def new_output(self, attempt: int) -> bytes:
        """The attempt's raw output added since the last call."""
        return self._read_new(self.log(attempt))

    def new_events(self, attempt: int | None) -> list[str]:
        """One line per event of attempt (every attempt when None) added since the last
        call."""
        lines = self._new_lines(run_files.task_events(self.log_dir, self.task))
        return [text for text in (event_line(line, attempt) for line in lines) if text is not None]

    def _read_new(self, path: Path) -> bytes:
        try:
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
        except FileNotFoundError:
            return b""
        self.offsets[path] = self.offsets.get(path, 0) + len(data)
        return data

    def _new_lines(self, path: Path) -> list[str]:
        """Complete lines only; a line being written waits for the next call."""
        text = self.partial + self._read_new(path).decode(errors="replace")
        *lines, self.partial = text.split("\n")
        return lines


def event_line(line: str, attempt: int | None) -> str | None:
    """A line of <task>.jsonl as `logs --events` shows it; None for another attempt's."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or (attempt is not None and event.get("attempt") != attempt):
        return None
    at = str(event.get("at", ""))[11:23]  # HH:MM:SS.mmm of the ISO time
    kind, text = event.get("kind", "?"), event.get("text", "")
    return f"{at}  attempt {event.get('attempt')}  {kind:<12} {text}"
