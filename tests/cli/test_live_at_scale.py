"""What a person following a 10,000-task run sees: totals, a rate and an ETA, the
running tasks and the latest failures, never a line per task. Built from a made-up state
with no server, so the size costs nothing to test."""

import io
import re
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console

from magsag.cli.control_cmd import task_lines
from magsag.cli.live import render
from magsag.cli.overview import FAILURES_SHOWN
from magsag.cli.progress import SUMMARY_SECONDS, Changes
from magsag.contracts import run_files
from magsag.contracts.run import RunResult, RunStatus, TaskResult, TaskStatus

RUNNING, FAILED = 32, 40
# 2 tasks/s and 33 minutes to go, give or take the time a loaded machine takes to build
# the state before the view reads the clock.
PACE = r"(2\.0|1\.9) tasks/s, ETA 3[34]m"


def _big_state(now: datetime) -> RunResult:
    """An hour into a run: 6,000 tasks merged, the latest a task every half second (2
    tasks/s), 40 failed, 32 running, the rest pending."""
    start, states = now - timedelta(hours=1), {}
    for i in range(10_000):
        name = f"migrate-{i:05d}"
        if i < 6_000:
            ended = now - timedelta(seconds=0.5 * (6_000 - i))
            task = TaskResult(
                name=name,
                status=TaskStatus.SUCCEEDED,
                attempts=1,
                started_at=ended - timedelta(seconds=20),
                finished_at=ended,
            )
        elif i < 6_000 + FAILED:
            task = TaskResult(
                name=name,
                status=TaskStatus.FAILED,
                attempts=2,
                started_at=start,
                finished_at=start + timedelta(seconds=i - 6_000),
                error=f"AgentFailed: agent exited with code 3\n{name} details",
            )
        elif i < 6_000 + FAILED + RUNNING:
            task = TaskResult(name=name, status=TaskStatus.RUNNING, started_at=now)
        else:
            task = TaskResult(name=name)
        states[name] = task
    return RunResult(
        run_id="big",
        plan="migration",
        repo="/repo",
        base="main",
        integration_branch="magsag/big/integration",
        started_at=start,
        tasks=states,
    )


def _screen(result: RunResult) -> list[str]:
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(render(result))
    return console.export_text().splitlines()


def test_the_live_view_of_10000_tasks_shows_totals_rate_running_and_failures(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGSAG_STATE_DIR", str(tmp_path))
    result = _big_state(datetime.now(UTC))
    busy = "migrate-06040"  # running: its second attempt's output is in the run's files
    log = run_files.attempt_log(run_files.run_dir(tmp_path, "big"), busy, 2)
    log.parent.mkdir(parents=True)
    log.write_text("rewriting imports in setup.py\n")

    began = time.process_time()
    screen = _screen(result)
    assert time.process_time() - began < 0.5, "a refresh must cost about one pass over tasks"

    header, tally, bar = screen[:3]
    assert "6040/10000 tasks done" in header
    assert tally == "6000 succeeded, 32 running, 3928 pending, 40 failed"
    # The last 100 tasks merged one every 0.5 s: 2 tasks/s, 3,960 to go in about 33 min.
    assert "60%" in bar and re.search(PACE, bar)
    rows = [line for line in screen if "▶ running" in line]
    assert len(rows) == RUNNING
    [row] = [line for line in rows if busy in line]
    assert " 2 " in row and "rewriting imports in setup.py" in row
    failures = [line for line in screen if line.startswith("✗")]
    assert len(failures) == FAILURES_SHOWN
    assert "migrate-06039" in failures[0] and "exited with code 3 …" in failures[0]  # latest
    assert screen[-1].startswith(f"… and {FAILED - FAILURES_SHOWN} more failed")
    assert len(screen) <= 3 + 1 + RUNNING + FAILURES_SHOWN + 1
    assert not any("pending" in line for line in screen[3:])


def test_a_small_run_still_lists_every_task(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGSAG_STATE_DIR", str(tmp_path))
    result = _big_state(datetime.now(UTC))
    result.tasks = {
        name: result.tasks[name]
        for name in ("migrate-00000", "migrate-06000", "migrate-06040", "migrate-09999")
    }
    screen = _screen(result)
    assert "2/4 tasks done" in screen[0]
    for name, state in [
        ("migrate-00000", "✓ succeeded"),
        ("migrate-06000", "✗ failed"),
        ("migrate-06040", "▶ running"),
        ("migrate-09999", "· pending"),
    ]:
        assert any(name in line and state in line for line in screen), (name, screen)


def test_without_a_terminal_a_big_run_prints_its_changes_and_totals_now_and_then():
    now = datetime.now(UTC)
    result = _big_state(now)
    changes = Changes()
    first = changes.lines(result, 0.0)
    # The running tasks and a line of totals; nothing for 9,968 tasks that did not change.
    assert len(first) == RUNNING + 1
    assert first[-1].startswith("run big running: 6040/10000 tasks done (6000 succeeded")
    assert re.search(PACE, first[-1])
    assert changes.lines(result, 1.0) == []

    result.tasks["migrate-06040"] = result.tasks["migrate-06040"].model_copy(
        update={"status": TaskStatus.SUCCEEDED, "finished_at": now}
    )
    [line] = changes.lines(result, 2.0)
    assert "migrate-06040" in line and "succeeded" in line
    [summary] = changes.lines(result, SUMMARY_SECONDS + 1)
    assert "6041/10000 tasks done" in summary

    result.status, result.finished_at = RunStatus.SUCCEEDED, now
    ended = Changes().lines(result, 0.0)[-1]
    assert ended.endswith("), 1.7 tasks/s")  # the whole run's pace: 6,041 tasks in an hour


def test_status_of_a_big_run_names_the_running_and_failed_tasks_not_every_task():
    result = _big_state(datetime.now(UTC))
    lines = task_lines(result)
    assert len(lines) == RUNNING + FAILURES_SHOWN + 3
    assert sum("running" in line for line in lines) >= RUNNING
    assert f"… and {FAILED - FAILURES_SHOWN} more failed" in lines
    assert "6040/10000 tasks done" in lines[-2]
    assert lines[-1] == "every task: magsag status big --json"
