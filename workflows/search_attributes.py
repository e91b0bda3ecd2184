"""The run's search attributes: what `temporal workflow list --query` and the Web UI's
filter find runs by. Kept current by the plan workflow, upserted only when they change."""

from collections import Counter

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from magsag.contracts.run import (
        FAILED_TASK_STATUSES,
        FINISHED_TASK_STATUSES,
        GateStatus,
        RunResult,
    )

RUN_STATUS = SearchAttributeKey.for_keyword("MagsagRunStatus")
WAITING = SearchAttributeKey.for_keyword("MagsagWaiting")
TASKS_DONE = SearchAttributeKey.for_int("MagsagTasksDone")
TASKS_FAILED = SearchAttributeKey.for_int("MagsagTasksFailed")
COST_USD = SearchAttributeKey.for_float("MagsagCostUsd")


def current(result: RunResult, counts: Counter) -> dict:
    """The values the run's attributes should have now; counts: tasks by status."""
    waiting = sorted(g.id for g in result.gates.values() if g.status == GateStatus.WAITING)
    return {
        RUN_STATUS: result.status.value,
        WAITING: ",".join(waiting),
        TASKS_DONE: sum(counts[s] for s in FINISHED_TASK_STATUSES),
        TASKS_FAILED: sum(counts[s] for s in FAILED_TASK_STATUSES),
        COST_USD: round(result.usage.cost_usd, 6),
    }


def upsert_changes(values: dict, last: dict) -> None:
    """Upsert what differs from the last upsert (each upsert is an event in history)."""
    changed = [key.value_set(value) for key, value in values.items() if last.get(key) != value]
    if changed:
        workflow.upsert_search_attributes(changed)
        last.update(values)
