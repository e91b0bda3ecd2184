"""The Scheduler alone: which tasks start, in which order, and what is skipped.

Pure bookkeeping, so no server: each test drives it the way the plan workflow does
(next_to_start, agent_done, finish) and reads back what a user would see start.
"""

from magsag.contracts.run import Gate, GateStatus, TaskStatus
from magsag.workflows.gates import Gates
from magsag.workflows.scheduler import Scheduler
from tests.support.runs import bash_plan

OK = TaskStatus.SUCCEEDED


def scheduler(tasks: list[dict], concurrency: int = 4, gates: Gates | None = None, **plan):
    return Scheduler(bash_plan(tasks, **plan), concurrency, gates=gates)


def t(name: str, *deps: str, **extra) -> dict:
    return {"name": name, "prompt": "true", "depends_on": list(deps), **extra}


def test_ready_tasks_start_by_priority_then_plan_order_within_the_cap():
    s = scheduler([t("a"), t("b", priority=2), t("c"), t("d", priority=2)], concurrency=3)
    assert s.next_to_start() == ["b", "d", "a"]
    assert s.next_to_start() == []  # the cap holds until a slot frees
    s.finish("b", OK)
    assert s.next_to_start() == ["c"]


def test_a_dependent_starts_only_once_its_dependencies_succeeded():
    s = scheduler([t("a"), t("b", "a"), t("c", "a", "b")])
    assert s.next_to_start() == ["a"]
    s.agent_done("a")  # done, merging: its slot is free, but dependents wait for the merge
    assert s.next_to_start() == []
    s.finish("a", OK)
    assert s.next_to_start() == ["b"]
    s.finish("b", OK)
    assert s.next_to_start() == ["c"]


def test_a_task_merging_gives_its_slot_to_the_next():
    s = scheduler([t("a"), t("b")], concurrency=1)
    assert s.next_to_start() == ["a"]
    s.agent_done("a")
    assert s.next_to_start() == ["b"]


def test_a_runner_cap_holds_beside_the_global_one():
    runners = {"sh": {"command": ["bash", "-c", "{prompt}"]},
               "one": {"command": ["bash", "-c", "{prompt}"], "max_parallel": 1}}  # fmt: skip
    tasks = [t("x1", runner="one"), t("x2", runner="one"), t("y", runner="sh")]
    s = scheduler(tasks, concurrency=4, runners=runners)
    assert s.next_to_start() == ["x1", "y"]
    s.finish("x1", OK)
    assert s.next_to_start() == ["x2"]


def test_a_failure_skips_everything_after_it_and_a_critical_one_stops_new_starts():
    s = scheduler([t("a", critical=False), t("b", "a"), t("c", "b"), t("d"), t("e")], 2)
    assert s.next_to_start() == ["a", "d"]
    s.finish("a", TaskStatus.FAILED)
    assert s.next_to_start() == ["e"]  # a was not critical: the run goes on
    assert (s.status["b"], s.status["c"]) == (TaskStatus.SKIPPED, TaskStatus.SKIPPED)
    s.finish("d", TaskStatus.CONFLICTED)  # critical by default
    assert s.stopping and s.next_to_start() == []


def test_a_gated_task_waits_until_its_gate_is_open_and_a_rejection_skips_it():
    result_gates = {"task:b": Gate(id="task:b"), "task:c": Gate(id="task:c")}
    gates = Gates(result_gates)
    s = scheduler([t("a"), t("b", "a", approval=True), t("c", approval=True)], gates=gates)
    assert s.next_to_start() == ["a"]
    assert s.waiting_gates() == {"task:c"}  # b's dependency is not done yet
    s.finish("a", OK)
    assert s.waiting_gates() == {"task:b", "task:c"}
    gates.reached(s.waiting_gates())
    result_gates["task:b"].status = GateStatus.APPROVED  # as an update sets it
    result_gates["task:c"].status = GateStatus.REJECTED
    assert s.next_to_start() == []  # decisions count once the workflow applies them
    assert [g.id for g in gates.apply_decisions()] == ["task:c"]
    assert s.pending_behind("task:c") == ["c"]
    assert s.next_to_start() == ["b"]


def test_carried_tasks_of_a_resumed_run_never_start_and_count_for_dependents():
    plan = bash_plan([t("a"), t("b", "a"), t("c")])
    s = Scheduler(plan, 4, carried={"a": OK, "c": OK})
    assert s.next_to_start() == ["b"]


def test_finish_pending_ends_what_never_started():
    s = scheduler([t("a"), t("b", "a")])
    s.next_to_start()
    s.stop()
    assert s.finish_pending(TaskStatus.SKIPPED) == ["b"]
    assert s.running() == ["a"]
