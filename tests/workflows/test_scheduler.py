"""The Scheduler alone: which tasks start, in which order, and what is skipped.

Pure bookkeeping, so no server: each test drives it the way the plan workflow does
(next_to_start, agent_done, finish) and reads back what a user would see start.
"""

import random
import time

import pytest

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
    assert [n for n, st in s.status.items() if st == TaskStatus.RUNNING] == ["a"]


class Reference:
    """The scheduler's rules written the plain way (every task looked at on every call):
    the new one must start exactly the same tasks in the same order, or recorded
    histories would no longer replay."""

    def __init__(self, plan, concurrency, gates):
        self.plan, self.concurrency, self.gates = plan, concurrency, gates
        self.status = {t.name: TaskStatus.PENDING for t in plan.tasks}
        self.merging, self.stopping = set(), False

    def _ready(self):
        return [t for t in self.plan.tasks if self.status[t.name] == TaskStatus.PENDING
                and all(self.status[d] == OK for d in t.depends_on)]  # fmt: skip

    def next_to_start(self):
        changed = True
        while changed:
            changed = False
            for t in self.plan.tasks:
                blocked = any(self.status[d] not in (TaskStatus.PENDING, TaskStatus.RUNNING, OK)
                              for d in t.depends_on)  # fmt: skip
                if self.status[t.name] == TaskStatus.PENDING and blocked:
                    self.status[t.name], changed = TaskStatus.SKIPPED, True
        if self.stopping:
            return []
        running = [n for n, s in self.status.items() if s == TaskStatus.RUNNING
                   and n not in self.merging]  # fmt: skip
        per_runner = {}
        for n in running:
            per_runner[self.plan.task(n).runner] = per_runner.get(self.plan.task(n).runner, 0) + 1
        ready = [t for t in self._ready() if t.gate is None or self.gates.is_open(t.gate)]
        ready.sort(key=lambda t: (-t.priority, self.plan.tasks.index(t)))
        started = []
        for t in ready:
            if len(running) + len(started) >= self.concurrency:
                break
            cap = self.plan.runners[t.runner].max_parallel
            if cap is not None and per_runner.get(t.runner, 0) >= cap:
                continue
            per_runner[t.runner] = per_runner.get(t.runner, 0) + 1
            self.status[t.name] = TaskStatus.RUNNING
            started.append(t.name)
        return started

    def waiting_gates(self):
        if self.stopping:
            return set()
        return {t.gate for t in self._ready() if t.gate and not self.gates.is_open(t.gate)}

    def finish(self, name, status):
        self.merging.discard(name)
        self.status[name] = status
        if status in (TaskStatus.FAILED, TaskStatus.CONFLICTED) and self.plan.task(name).critical:
            self.stopping = True


@pytest.mark.parametrize("seed", range(40))
def test_the_scheduler_starts_what_the_plain_rules_start_in_the_same_order(seed):
    rng = random.Random(seed)
    runners = {"sh": {"command": ["true"]}, "one": {"command": ["true"], "max_parallel": 1}}
    tasks = []
    for i in range(rng.randint(5, 40)):
        deps = rng.sample([t["name"] for t in tasks], k=min(len(tasks), rng.randint(0, 3)))
        tasks.append(t(f"t{i}", *deps, priority=rng.randint(0, 2), critical=rng.random() < 0.3,
                       runner=rng.choice(["sh", "one"]), approval=rng.random() < 0.1))  # fmt: skip
    plan = bash_plan(tasks, runners=runners)
    gates_new = Gates({task.gate: Gate(id=task.gate) for task in plan.tasks if task.gate})
    gates_old = Gates({task.gate: Gate(id=task.gate) for task in plan.tasks if task.gate})
    new = Scheduler(plan, rng.randint(1, 5), gates=gates_new)
    old = Reference(plan, new._concurrency, gates_old)
    running: list[str] = []
    for _ in range(400):
        started = new.next_to_start()
        assert started == old.next_to_start()
        assert new.waiting_gates() == old.waiting_gates()
        assert new.status == old.status
        running += started
        waiting = new.waiting_gates()
        for gates in (gates_new, gates_old):  # approve whatever waits, the same way
            for gate in waiting:
                gates.gates[gate].status = GateStatus.APPROVED
            gates.apply_decisions()
        if not running:
            break
        name = running.pop(rng.randrange(len(running)))
        outcome = rng.choice([OK, OK, OK, TaskStatus.FAILED, TaskStatus.CONFLICTED])
        if outcome == OK and rng.random() < 0.5:  # done, then merged a step later
            new.agent_done(name)
            old.merging.add(name)
            assert new.next_to_start() == old.next_to_start()
        new.finish(name, outcome)
        old.finish(name, outcome)


@pytest.mark.serial  # a time bound on pure computation: tests beside it would eat into it
def test_two_thousand_tasks_are_scheduled_one_event_at_a_time_in_well_under_a_second():
    tasks = [t(f"t{i}", *([f"t{i - 1}"] if i % 10 else [])) for i in range(2000)]
    one = bash_plan(tasks[:1])  # runners and defaults; the DAG itself built directly
    dag = [one.tasks[0].model_copy(update={"name": x["name"], "depends_on": x["depends_on"]})
           for x in tasks]  # fmt: skip
    plan = one.model_copy(update={"tasks": dag})
    started = time.perf_counter()
    s = Scheduler(plan, 32)
    running = s.next_to_start()
    done = 0
    while running:
        s.finish(running.pop(0), OK)
        done += 1
        running += s.next_to_start()
    assert done == 2000
    assert time.perf_counter() - started < 0.5
