"""Which tasks start next: pure, deterministic bookkeeping for the plan workflow.

A task is ready when every dependency succeeded; ready tasks start by priority
(higher first), then plan order, within the global cap and each runner's cap. A task
whose dependency ended any other way is skipped, and so is everything after it.
"""

from magsag.contracts.plan import Plan
from magsag.contracts.run import TaskStatus
from magsag.workflows.gates import Gates


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        concurrency: int,
        carried: dict[str, TaskStatus] | None = None,
        gates: Gates | None = None,
    ) -> None:
        """carried: statuses kept from a resumed run; those tasks never start. A task
        behind an approval gate starts once `gates` has it open."""
        self._plan = plan
        self._concurrency = concurrency
        self._order = {task.name: index for index, task in enumerate(plan.tasks)}
        self.status: dict[str, TaskStatus] = {t.name: TaskStatus.PENDING for t in plan.tasks}
        self.status.update(carried or {})
        self.stopping = False
        # Tasks whose agent is done and whose commit waits to be merged: still RUNNING
        # for their dependents, but no longer holding a concurrency slot.
        self._merging: set[str] = set()
        self._gates = gates or Gates({})

    def running(self) -> list[str]:
        return [name for name, status in self.status.items() if status == TaskStatus.RUNNING]

    def agent_done(self, name: str) -> None:
        self._merging.add(name)

    def next_to_start(self) -> list[str]:
        """Mark and return the tasks to start now."""
        self._skip_unreachable()
        if self.stopping:
            return []
        running = [name for name in self.running() if name not in self._merging]
        per_runner: dict[str, int] = {}
        for name in running:
            runner = self._plan.task(name).runner
            per_runner[runner] = per_runner.get(runner, 0) + 1
        ready = [t for t in self._ready() if t.gate is None or self._gates.is_open(t.gate)]
        ready.sort(key=lambda task: (-task.priority, self._order[task.name]))
        started: list[str] = []
        for task in ready:
            if len(running) + len(started) >= self._concurrency:
                break
            cap = self._plan.runners[task.runner].max_parallel
            if cap is not None and per_runner.get(task.runner, 0) >= cap:
                continue
            per_runner[task.runner] = per_runner.get(task.runner, 0) + 1
            self.status[task.name] = TaskStatus.RUNNING
            started.append(task.name)
        return started

    def pending_behind(self, gate_id: str) -> list[str]:
        """Tasks not started yet that wait at this gate."""
        return [
            name
            for name, status in self.status.items()
            if status == TaskStatus.PENDING and self._plan.task(name).gate == gate_id
        ]

    def waiting_gates(self) -> set[str]:
        """Gates that hold a task whose dependencies are all done."""
        if self.stopping:
            return set()
        return {t.gate for t in self._ready() if t.gate and not self._gates.is_open(t.gate)}

    def _ready(self):
        return [
            task
            for task in self._plan.tasks
            if self.status[task.name] == TaskStatus.PENDING
            and all(self.status[dep] == TaskStatus.SUCCEEDED for dep in task.depends_on)
        ]

    def finish(self, name: str, status: TaskStatus) -> None:
        self._merging.discard(name)
        self.status[name] = status
        task = self._plan.task(name)
        if status in (TaskStatus.FAILED, TaskStatus.CONFLICTED) and task.critical:
            self.stopping = True

    def stop(self) -> None:
        self.stopping = True

    def finish_pending(self, status: TaskStatus) -> list[str]:
        """End every task that never started; returns their names."""
        pending = [n for n, s in self.status.items() if s == TaskStatus.PENDING]
        for name in pending:
            self.status[name] = status
        return pending

    def _skip_unreachable(self) -> None:
        changed = True
        while changed:
            changed = False
            for task in self._plan.tasks:
                if self.status[task.name] != TaskStatus.PENDING:
                    continue
                if any(
                    self.status[dep]
                    not in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED)
                    for dep in task.depends_on
                ):
                    self.status[task.name] = TaskStatus.SKIPPED
                    changed = True
