"""What a running run shows: its memo, search attributes and the Web UI's current details.

Work per change is proportional to what changed, never to the plan's size: counts by
status are kept as tasks change, and the memo gets the run's header plus a key per task
that changed (contracts/run.py RUN_MEMO), so each upsert in the history is small. Runs
started before that layout (the COMPACT_STATE patch) keep rewriting the whole state
under one key, as they did when they were recorded.
"""

from collections import Counter

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from magsag.contracts.run import (
        FAILED_TASK_STATUSES,
        RUN_MEMO,
        STATUS_MEMO,
        TASK_MEMO_PREFIX,
        RunResult,
        RunStatus,
        TaskStatus,
        task_memo,
    )
    from magsag.workflows import search_attributes, texts


# Patch: search attributes kept current at every change (before: run status at the end).
LIVE_SEARCH_ATTRIBUTES = "live-search-attributes"


class LiveState:
    def __init__(self, result: RunResult, execution: int, compact: bool):
        """result: the run's state, changed in place by the workflow, which calls
        changed(name) for each task it changes. execution: how many came before."""
        self._result = result
        self._execution = execution
        self._compact = compact
        self._counted = {name: task.status for name, task in result.tasks.items()}
        self.counts = Counter(self._counted.values())
        self._running = {n for n, s in self._counted.items() if s == TaskStatus.RUNNING}
        self._failed = {n for n, s in self._counted.items() if s in FAILED_TASK_STATUSES}
        self._resolving: set[str] = set()  # running tasks whose conflict a resolver has
        self._dirty: set[str] = set()
        self._header: dict = {}  # the RUN_MEMO value last upserted
        self._attrs: dict = {}  # search attribute values last upserted

    def changed(self, name: str) -> None:
        self._dirty.add(name)

    def publish(self) -> None:
        """Bring the memo, search attributes and current details up to date."""
        self._count_changes()
        if self._compact:
            self._upsert_compact_memo()
        else:
            workflow.upsert_memo({STATUS_MEMO: self._result.as_memo()})
        self._dirty.clear()
        if workflow.patched(LIVE_SEARCH_ATTRIBUTES):
            current = search_attributes.current(self._result, self.counts)
            search_attributes.upsert_changes(current, self._attrs)
        elif self._result.status != RunStatus.RUNNING:  # runs started before the patch
            workflow.upsert_search_attributes(
                [search_attributes.RUN_STATUS.value_set(self._result.status.value)]
            )
        workflow.set_current_details(
            texts.current_details(
                self._result, self.counts, self._running, self._failed, self._resolving
            )
        )

    def counts_now(self) -> dict[str, int]:
        """Tasks by status, changes not yet published included (counting is idempotent)."""
        self._count_changes()
        return {status.value: n for status, n in self.counts.items() if n}

    def fresh_memo(self, running: list[str]) -> dict:
        """The memo the run's next execution starts with (continue-as-new)."""
        memo = {RUN_MEMO: self._header_now(self._execution + 1)}
        for name in running:
            memo[TASK_MEMO_PREFIX + name] = task_memo(self._result.tasks[name])
        return memo

    def _count_changes(self) -> None:
        for name in self._dirty:
            task = self._result.tasks[name]
            status = task.status
            self.counts[self._counted[name]] -= 1
            self.counts[status] += 1
            self._counted[name] = status
            for names, member in (
                (self._running, status == TaskStatus.RUNNING),
                (self._failed, status in FAILED_TASK_STATUSES),
                (self._resolving, task.resolving and status == TaskStatus.RUNNING),
            ):
                if member:
                    names.add(name)
                else:
                    names.discard(name)

    def _upsert_compact_memo(self) -> None:
        memo = {TASK_MEMO_PREFIX + n: task_memo(self._result.tasks[n]) for n in self._dirty}
        header = self._header_now(self._execution)
        if header != self._header:
            memo[RUN_MEMO] = self._header = header
        if memo:
            workflow.upsert_memo(memo)

    def _header_now(self, execution: int) -> dict:
        counts = {status.value: n for status, n in self.counts.items() if n}
        return self._result.header_memo(counts, execution)
