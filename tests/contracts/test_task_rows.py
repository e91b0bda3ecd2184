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
from magsag.contracts.task_rows import (
    ERROR_CHARS,
    pack_all,
    pack_statuses,
    unpack_all,
    unpack_statuses,
)
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


def _largest_run_all_failed() -> tuple[RunInput, RunResult]:
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
    return inp, result


def test_the_hand_over_of_the_largest_plan_fits_one_payload_even_when_all_failed():
    inp, result = _largest_run_all_failed()
    handed = next_input(inp, result, running=[], attempts=3 * MAX_TASKS, this_run=None)
    assert size_on_the_wire(handed) < MAX_PAYLOAD_BYTES
    back = RunResult.initial(handed)
    assert {t.status for t in back.tasks.values()} == {TaskStatus.FAILED}
    assert back.tasks["migrate-package-09999"].attempts == 3


def test_a_hand_over_by_reference_carries_statuses_not_rows():
    inp, result = _largest_run_all_failed()
    names = list(result.tasks)
    result.tasks[names[1]].status = TaskStatus.SUCCEEDED
    result.tasks[names[2]].status = TaskStatus.RUNNING
    result.tasks[names[3]].status = TaskStatus.PENDING
    first = next_input(inp, result, running=[names[2]], attempts=1, this_run="run-1")
    second = next_input(first, result, running=[names[2]], attempts=1, this_run="run-2")
    # Only the DAG grows with the plan: ended tasks are one packed status run each.
    assert size_on_the_wire(second.handover) < 1024
    assert second.handover.earlier_runs == ["run-1", "run-2"]
    assert second.handover.done.rows == {}
    back = RunResult.initial(second).tasks
    assert back[names[0]].status == TaskStatus.FAILED and back[names[0]].attempts == 0
    assert back[names[1]].status == TaskStatus.SUCCEEDED
    assert back[names[2]].status == TaskStatus.RUNNING and back[names[2]].host  # a row
    assert back[names[3]].status == TaskStatus.PENDING
    assert back[names[-1]].status == TaskStatus.FAILED
    assert second.ended_before() == set(names) - {names[2], names[3]}


def test_packed_statuses_read_back_in_plan_order():
    statuses = [TaskStatus.SUCCEEDED] * 12 + [None, TaskStatus.FAILED, None, None]
    statuses += [TaskStatus.SKIPPED, TaskStatus.CONFLICTED, TaskStatus.CANCELLED]
    packed = pack_statuses(statuses)
    assert packed == "s12-f-2kcx"
    names = [f"t{i}" for i in range(len(statuses))]
    ended = {n: s for n, s in zip(names, statuses, strict=True) if s}
    assert unpack_statuses(packed, names) == ended
    assert pack_statuses([]) == "" and unpack_statuses("", names) == {}
