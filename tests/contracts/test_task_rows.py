"""Packed task rows: what a continued or resumed run carries reads back as it was, and
the hand-over of the largest plan fits one Temporal payload, failures and all."""

from datetime import UTC, datetime, timedelta

from magsag.contracts.plan_loader import MAX_TASKS, parse_plan
from magsag.contracts.run import (
    RunInput,
    RunPaths,
    RunResult,
    TaskResult,
    TaskStatus,
    Usage,
)
from magsag.contracts.task_rows import ERROR_CHARS, pack_all, unpack_all
from magsag.contracts.wire import MAX_PAYLOAD_BYTES, size_on_the_wire
from magsag.workflows.handover import next_input
from tests.support.runs import migration_tasks

EPOCH = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def test_rows_read_back_what_status_shows():
    tasks = [
        TaskResult(
            name="done", status=TaskStatus.SUCCEEDED, commit="a" * 40, attempts=2,
            started_at=_at(1.5), finished_at=_at(63.2), changed_files=["x.py"],
            usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.25, cost_estimated=True),
            host="build-host-07",
        ),
        TaskResult(name="broken", status=TaskStatus.FAILED, attempts=1, started_at=_at(-4),
                   finished_at=_at(2), error="agent exited with code 1 " + "x" * 500),
        TaskResult(name="clash", status=TaskStatus.CONFLICTED, commit="b" * 40,
                   conflict_files=["a", "b", "c", "d"], started_at=_at(3), finished_at=_at(4)),
        TaskResult(name="skip", status=TaskStatus.SKIPPED, error="rejected by bob: no"),
        TaskResult(name="busy", status=TaskStatus.RUNNING, started_at=_at(9)),
    ]  # fmt: skip
    back = unpack_all(pack_all(tasks, EPOCH))
    assert list(back) == [t.name for t in tasks]
    done = back["done"]
    assert (done.status, done.commit, done.attempts) == (TaskStatus.SUCCEEDED, "a" * 40, 2)
    assert (done.started_at, done.finished_at) == (_at(1.5), _at(63.2))
    assert done.usage == tasks[0].usage
    assert back["broken"].started_at == _at(-4)
    assert back["broken"].error.startswith("agent exited with code 1")
    assert len(back["broken"].error) == ERROR_CHARS
    assert back["clash"].conflict_files == ["a", "b", "c"]
    assert back["skip"].error == "rejected by bob: no" and back["skip"].started_at is None
    assert back["busy"].status == TaskStatus.RUNNING and back["busy"].finished_at is None


def test_the_hand_over_of_the_largest_plan_fits_one_payload_even_when_all_failed():
    tasks = migration_tasks(MAX_TASKS)
    plan = parse_plan({"runners": {"sh": {"command": ["true"]}}, "tasks": tasks}, "p.yaml")
    inp = RunInput(
        run_id="r", plan=plan.dag(), base="main", base_commit="c" * 40, host_queue="h",
        paths=RunPaths(repo="/r", worktree_root="/w", log_dir="/l"), concurrency=32,
    )  # fmt: skip
    result = RunResult.initial(inp, started_at=EPOCH)
    for index, task in enumerate(result.tasks.values()):
        task.status, task.attempts = TaskStatus.FAILED, 3
        task.started_at, task.finished_at = _at(index), _at(index + 600)
        task.error = f"{task.name}: the checks failed: pytest exited 1 " + "e" * 400
        task.host = f"worker-host-{index % 50:02d}.build.example.com"
    handed = next_input(inp, result, running=[], attempts=3 * MAX_TASKS)
    assert size_on_the_wire(handed) < MAX_PAYLOAD_BYTES
    back = RunResult.initial(handed)
    assert {t.status for t in back.tasks.values()} == {TaskStatus.FAILED}
    assert back.tasks["migrate-package-09999"].attempts == 3
