"""The rows of `runs list`: one per run, from visibility and each run's memo."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowExecution

from magsag.contracts import constants as C
from magsag.contracts.run import RUN_MEMO, STATUS_MEMO, RunResult, RunStatus
from magsag.history.status import effective_status, execution_status_name

# A run ended from outside the workflow keeps MagsagRunStatus "running": the execution
# status says how it ended (as history.status.effective_status maps it).
_OUTSIDE = 'MagsagRunStatus = "running" AND ExecutionStatus'
STATUS_QUERIES = {
    RunStatus.RUNNING: f'({_OUTSIDE} = "Running")',
    RunStatus.FAILED: f'(MagsagRunStatus = "failed" OR ({_OUTSIDE} IN '
    '("Failed", "Terminated", "TimedOut")))',
    RunStatus.CANCELLED: f'(MagsagRunStatus = "cancelled" OR ({_OUTSIDE} = "Canceled"))',
}


def list_query(repo: Path | str | None, status: RunStatus | None) -> str:
    """The visibility query of the runs on repo in status (either may be None: any)."""
    # A run that continued as new is one run: its earlier executions are not listed.
    clauses = [f"WorkflowType = '{C.PLAN_WORKFLOW}'", "ExecutionStatus != 'ContinuedAsNew'"]
    if repo is not None:
        clauses.append(f'MagsagRepo = "{repo}"')
    if status is not None:
        clauses.append(STATUS_QUERIES.get(status, f'MagsagRunStatus = "{status.value}"'))
    return " AND ".join(clauses)


async def run_rows(
    client: Client, repo: Path | str | None, status: RunStatus | None, limit: int
) -> list[dict]:
    """At most limit rows, newest first."""
    # SQL visibility orders by close time and refuses ORDER BY: sort here, newest first,
    # and decode memos only of the runs shown.
    executions = [e async for e in client.list_workflows(list_query(repo, status))]
    executions.sort(key=lambda e: e.start_time, reverse=True)
    return await asyncio.gather(*(run_row(e) for e in executions[:limit]))


async def run_row(execution: WorkflowExecution) -> dict:
    result, tasks = await _memo_of(execution)
    attrs = {key.name: value for key, value in execution.typed_search_attributes}
    status = effective_status(
        result.status if result else RunStatus(attrs.get("MagsagRunStatus", "running")),
        execution.status,
    )
    end = execution.close_time or datetime.now(UTC)
    return {
        "run_id": execution.id.removeprefix(C.WORKFLOW_ID_PREFIX),
        "plan": result.plan if result else attrs.get("MagsagPlan"),
        "repo": result.repo if result else attrs.get("MagsagRepo"),
        "status": status.value,
        "execution_status": execution_status_name(execution.status),
        "tasks": tasks,
        "cost_usd": result.usage.cost_usd if result else 0.0,
        "started_at": execution.start_time.isoformat(),
        "finished_at": execution.close_time.isoformat() if execution.close_time else None,
        "duration_seconds": round((end - execution.start_time).total_seconds(), 3),
    }


async def _memo_of(execution: WorkflowExecution) -> tuple[RunResult | None, dict[str, int]]:
    """The run's header and its tasks counted by status, from either memo layout."""
    header = await execution.memo_value(RUN_MEMO, default=None)
    if header is not None:
        counts = header.get("counts", {})
        return RunResult.model_validate(header | {"tasks": {}}), counts
    result = await execution.memo_value(STATUS_MEMO, default=None, type_hint=RunResult)
    tasks: dict[str, int] = {}
    for task in result.tasks.values() if result else []:
        tasks[task.status.value] = tasks.get(task.status.value, 0) + 1
    return result, tasks
