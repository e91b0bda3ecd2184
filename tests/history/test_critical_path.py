"""Both critical paths as plain functions: the plan's worst case and the measured one."""

from datetime import UTC, datetime, timedelta

from magsag.contracts.plan_loader import parse_plan
from magsag.contracts.run import TaskStatus
from magsag.history.critical_path import measured_path, worst_case_path
from magsag.history.views import AttemptView, TaskView, WaitView

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def task(name: str, ready, started, finished, done, depends_on=(), **fields) -> TaskView:
    """A task that ran from `started` to `finished` (seconds after T0), merged at `done`."""
    times = [ready, started, finished, done]
    ready, started, finished, done = (None if t is None else at(t) for t in times)
    status = fields.pop("status", TaskStatus.SUCCEEDED if finished else TaskStatus.RUNNING)
    return TaskView(
        name=name, status=status, depends_on=list(depends_on), runner="sh", critical=True,
        ready_at=ready, started_at=started, finished_at=finished, done_at=done, **fields,
    )  # fmt: skip


def attempt(number: int, started: float, finished: float | None) -> AttemptView:
    return AttemptView(
        attempt=number,
        outcome="succeeded" if finished else "running",
        scheduled_at=at(started),
        started_at=at(started),
        finished_at=at(finished) if finished else None,
    )


def test_the_worst_case_path_adds_up_timeouts_not_tasks():
    plan = parse_plan(
        {
            "runners": {"sh": {"command": ["true"]}},
            "tasks": [
                {"name": "a", "prompt": "p", "timeout": "1m"},
                {"name": "b", "prompt": "p", "timeout": "1m", "depends_on": ["a"]},
                {"name": "c", "prompt": "p", "timeout": "1m", "depends_on": ["b"]},
                {"name": "slow", "prompt": "p", "timeout": "1h"},
                {"name": "d", "prompt": "p", "timeout": "1m", "depends_on": ["slow", "a"]},
            ],
        }
    )
    assert worst_case_path(plan) == (["slow", "d"], 3660.0)


def test_the_measured_path_follows_the_dependency_merged_last():
    retried = [attempt(1, 2.5, 4), attempt(2, 9, 11)]
    backoff = [WaitView(kind="backoff", started_at=at(4), seconds=5, ended_at=at(9))]
    tasks = {
        "fast": task("fast", 1, 1, 2, 2.5),
        "slow": task("slow", 1, 2, 12, 13, attempts=retried, waits=backoff),
        "last": task("last", 13, 14, 19, 20, depends_on=["fast", "slow"]),
        "side": task("side", 1, 1, 3, 4),
    }
    path = measured_path(tasks, T0, at(21))
    assert path.tasks == ["slow", "last"]
    assert path.seconds == 21
    slow, last = path.steps
    assert (slow.waiting_seconds, slow.running_seconds, slow.merging_seconds) == (1, 10, 1)
    assert (slow.agent_seconds, slow.retry_wait_seconds, slow.overhead_seconds) == (3.5, 5, 1.5)
    assert path.time == {
        "setup": 1, "waiting": 2, "agents": 3.5, "retry_waits": 5, "orchestration": 6.5,
        "merging": 2, "finishing": 1,
    }  # fmt: skip
    assert sum(path.time.values()) == path.seconds


def test_a_running_run_path_so_far_ends_in_what_it_is_doing():
    tasks = {
        "first": task("first", 0, 0, 2, 3),
        "now": task("now", 3, 4, None, None, depends_on=["first"], attempts=[attempt(1, 4, None)]),
        "later": task("later", None, None, None, None, depends_on=["now"], status="pending"),
    }
    path = measured_path(tasks, T0, at(10))
    assert path.tasks == ["first", "now"]
    now = path.steps[-1]
    assert now.in_progress and now.done_at == at(10) and now.agent_seconds == 6
    assert path.time["finishing"] == 0


def test_no_path_before_anything_is_ready():
    tasks = {"a": task("a", None, None, None, None, status="pending")}
    path = measured_path(tasks, T0, at(5))
    assert path.tasks == [] and path.steps == [] and path.seconds == 0
