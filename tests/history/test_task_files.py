"""A task's files read as they grow, as `logs --follow` and the live view read them."""

import json

from magsag.contracts import run_files
from magsag.history.task_files import TaskFiles, attempts


def test_attempts_are_the_task_s_own_logs_in_numeric_order(tmp_path):
    for name in ("a", "a.attempt-1"):  # task names may contain ".attempt-"
        for number in (1, 2, 10):
            run_files.attempt_log(tmp_path, name, number).write_text("out")
    (tmp_path / "a.attempt-x.log").write_text("not an attempt")
    assert attempts(tmp_path, "a") == [1, 2, 10]
    assert attempts(tmp_path, "a.attempt-1") == [1, 2, 10]
    assert attempts(tmp_path / "missing", "a") == []


def test_new_output_and_events_come_once_and_whole_lines_only(tmp_path):
    files = TaskFiles(tmp_path, "t")
    assert files.new_output(1) == b"" and files.new_events(None) == []
    log = run_files.attempt_log(tmp_path, "t", 1)
    log.write_bytes(b"one\n")
    assert files.new_output(1) == b"one\n"
    with log.open("ab") as f:
        f.write(b"two\n")
    assert files.new_output(1) == b"two\n" and files.new_output(1) == b""

    events = run_files.task_events(tmp_path, "t")
    line = {"at": "2026-01-01T10:20:30.456+00:00", "kind": "tool", "text": "ls"}
    with events.open("w") as f:
        f.write(json.dumps({**line, "attempt": 1}) + "\n")
        f.write(json.dumps({**line, "attempt": 2})[:20])  # being written
    assert files.new_events(None) == ["10:20:30.456  attempt 1  tool         ls"]
    with events.open("a") as f:
        f.write(json.dumps({**line, "attempt": 2})[20:] + "\nnot json\n")
    assert files.new_events(1) == []  # attempt 2's event, skipped for attempt 1
