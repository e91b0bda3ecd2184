"""Which tasks start next: pure, deterministic bookkeeping for the plan workflow.

A task is ready when every dependency succeeded; ready tasks start by priority
(higher first), then plan order, within the global cap and each runner's cap. A task
whose dependency ended any other way is skipped, and so is everything after it. A
best-of-N task takes a slot per candidate (at most the whole cap) and counts against
each candidate's runner; when it does not fit, nothing behind it starts before it.

Work per event is proportional to what the event touches (the finished task's
dependents, the ready tasks looked at), never to the size of the plan: a run of
thousands of tasks calls this after every task.
"""

import heapq
from collections import Counter, defaultdict

from magsag.contracts.plan import Plan
from magsag.contracts.run import TaskStatus
from magsag.workflows.gates import Gates

# Statuses after which a task's dependents can still run (or already do).
_NOT_BLOCKING = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED)


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        concurrency: int,
        carried: dict[str, TaskStatus] | None = None,
        gates: Gates | None = None,
        running: list[str] = (),
    ) -> None:
        """carried: statuses kept from a resumed run or an earlier execution of this
        one; those tasks never start. running: tasks an earlier execution started, still
        running. A task behind an approval gate starts once `gates` has it open."""
        self._plan = plan
        self._concurrency = concurrency
        self._gates = gates or Gates({})
        self._order = {task.name: index for index, task in enumerate(plan.tasks)}
        self.status: dict[str, TaskStatus] = {t.name: TaskStatus.PENDING for t in plan.tasks}
        self.status.update(carried or {})
        self.stopping = False
        self._changed: set[str] = set(self.status)
        self._dependents: dict[str, list[str]] = defaultdict(list)
        self._unmet: dict[str, int] = {}  # dependencies not succeeded yet, per task
        self._ready: list[tuple[int, int, str]] = []  # heap: (-priority, plan order, name)
        self._held: dict[str, list[str]] = defaultdict(list)  # ready, behind a closed gate
        self._by_gate: dict[str, list[str]] = defaultdict(list)
        self._running: set[str] = set()
        # Tasks whose agent is done and whose commit waits to be merged: still RUNNING
        # for their dependents, but no longer holding a concurrency slot.
        self._merging: set[str] = set()
        self._per_runner: dict[str, int] = defaultdict(int)  # agents running, per runner
        self._agents = 0  # slots held by running agents (a best-of-N task holds several)
        self._blocked: list[str] = []  # ended unsuccessfully: dependents to skip
        for name in running:
            self.status[name] = TaskStatus.RUNNING
            self._running.add(name)
            self._hold(name, 1)
        self._unstarted = sum(s == TaskStatus.PENDING for s in self.status.values())
        for task in plan.tasks:
            if task.gate:
                self._by_gate[task.gate].append(task.name)
            for dep in task.depends_on:
                self._dependents[dep].append(task.name)
            self._unmet[task.name] = sum(
                self.status[dep] != TaskStatus.SUCCEEDED for dep in task.depends_on
            )
        for name, status in self.status.items():
            if status == TaskStatus.PENDING and self._unmet[name] == 0:
                self._make_ready(name)
            elif status not in _NOT_BLOCKING:
                self._blocked.append(name)

    def agent_done(self, name: str) -> None:
        self._changed.add(name)  # still RUNNING for its dependents until merged
        if name not in self._merging:
            self._merging.add(name)
            self._hold(name, -1)

    def next_to_start(self) -> list[str]:
        """Mark and return the tasks to start now."""
        self._skip_unreachable()
        if self.stopping:
            return []
        self._release_opened_gates()
        started: list[str] = []
        capped: list[tuple[int, int, str]] = []
        while self._ready and self._agents < self._concurrency:
            entry = heapq.heappop(self._ready)
            name = entry[2]
            if self.status[name] != TaskStatus.PENDING:
                continue  # skipped or rejected since it became ready
            if self._weight(name) > self._concurrency - self._agents:
                heapq.heappush(self._ready, entry)  # it goes first once slots free
                break
            if self._capped(name):
                capped.append(entry)
                continue
            self._hold(name, 1)
            self._running.add(name)
            self._set(name, TaskStatus.RUNNING)
            started.append(name)
        for entry in capped:
            heapq.heappush(self._ready, entry)
        return started

    def pending_behind(self, gate_id: str) -> list[str]:
        """Tasks not started yet that wait at this gate."""
        return [n for n in self._by_gate[gate_id] if self.status[n] == TaskStatus.PENDING]

    def waiting_gates(self) -> set[str]:
        """Gates that hold a task whose dependencies are all done."""
        if self.stopping:
            return set()
        return {
            gate
            for gate, names in self._held.items()
            if not self._gates.is_open(gate)
            and any(self.status[n] == TaskStatus.PENDING for n in names)
        }

    def finish(self, name: str, status: TaskStatus) -> None:
        if name in self._running:
            self._running.discard(name)
            if name in self._merging:
                self._merging.discard(name)
            else:
                self._hold(name, -1)
        self._set(name, status)
        if status == TaskStatus.SUCCEEDED:
            for dependent in self._dependents[name]:
                self._unmet[dependent] -= 1
                if self._unmet[dependent] == 0 and self.status[dependent] == TaskStatus.PENDING:
                    self._make_ready(dependent)
        else:
            self._blocked.append(name)
        if status in (TaskStatus.FAILED, TaskStatus.CONFLICTED) and self._plan.task(name).critical:
            self.stopping = True

    def has_unstarted(self) -> bool:
        """Whether a task has neither started nor ended yet."""
        return self._unstarted > 0

    def stop(self) -> None:
        self.stopping = True

    def cancel_running(self) -> None:
        """The run is over: what still runs counts as cancelled."""
        for name in list(self._running):
            self._set(name, TaskStatus.CANCELLED)
        self._running.clear()
        self._merging.clear()

    def finish_pending(self, status: TaskStatus) -> list[str]:
        """End every task that never started; returns their names."""
        pending = [n for n, s in self.status.items() if s == TaskStatus.PENDING]
        for name in pending:
            self._set(name, status)
        return pending

    def take_changes(self) -> dict[str, TaskStatus]:
        """Statuses changed since the last call (all of them at the first), in plan order."""
        changed = {name: self.status[name] for name in self._plan_order(self._changed)}
        self._changed.clear()
        return changed

    def _set(self, name: str, status: TaskStatus) -> None:
        if self.status[name] == TaskStatus.PENDING:
            self._unstarted -= 1
        self.status[name] = status
        self._changed.add(name)

    def _runners(self, name: str) -> list[str]:
        """The runner of each agent the task runs at once."""
        task = self._plan.task(name)
        return task.candidates or [task.runner]

    def _weight(self, name: str) -> int:
        """Slots the task holds: one per agent, at most the whole cap (a best-of-N task
        with more candidates than --concurrency runs them all, alone)."""
        return min(len(self._runners(name)), self._concurrency)

    def _capped(self, name: str) -> bool:
        for runner, count in Counter(self._runners(name)).items():
            cap = self._plan.runners[runner].max_parallel
            if cap is not None and self._per_runner[runner] + count > cap:
                return True
        return False

    def _hold(self, name: str, sign: int) -> None:
        """Take (1) or give back (-1) the task's slots and its runners' places."""
        self._agents += sign * self._weight(name)
        for runner in self._runners(name):
            self._per_runner[runner] += sign

    def _make_ready(self, name: str) -> None:
        gate = self._plan.task(name).gate
        if gate is not None and not self._gates.is_open(gate):
            self._held[gate].append(name)
        else:
            task = self._plan.task(name)
            heapq.heappush(self._ready, (-task.priority, self._order[name], name))

    def _release_opened_gates(self) -> None:
        for gate in [g for g in self._held if self._gates.is_open(g)]:
            for name in self._held.pop(gate):
                task = self._plan.task(name)
                heapq.heappush(self._ready, (-task.priority, self._order[name], name))

    def _skip_unreachable(self) -> None:
        """Skip what depends, however far down, on a task that ended unsuccessfully."""
        while self._blocked:
            for dependent in self._dependents[self._blocked.pop()]:
                if self.status[dependent] == TaskStatus.PENDING:
                    self._set(dependent, TaskStatus.SKIPPED)
                    self._blocked.append(dependent)

    def _plan_order(self, names) -> list[str]:
        return sorted(names, key=self._order.__getitem__)
