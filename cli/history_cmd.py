"""`magsag runs list`, `runs describe`, `logs` and the seeds' `agent` aliases.

A run's record after the fact: everything here reads what Temporal keeps (visibility,
describe, the memo, event histories) and the run's files, never a live query, so it
works with no worker polling and long after the run ended.
"""

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from magsag.activities import run_log
from magsag.cli import activity_files, inputs, plan_cmd, run_cmd
from magsag.cli.console import fail, info, print_json
from magsag.cli.control_cmd import existing_run, run_input_of
from magsag.cli.progress import POLL_SECONDS, STATUS_OF_CLOSED, read_status
from magsag.cli.render import cost_text, gate_line, task_line
from magsag.cli.runtime import connect_or_exit
from magsag.contracts import constants as C
from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    CloseWorktreeOutput,
    IntegrateInput,
    IntegrateOutput,
)
from magsag.contracts.durations import format_duration
from magsag.contracts.run import (
    FINISHED_TASK_STATUSES,
    RunInput,
    RunResult,
    RunStatus,
    TaskStatus,
    Usage,
)
from magsag.workflows.plan import STATUS_MEMO

runs_app = typer.Typer(
    help="Past and current runs, from Temporal's records: works with no worker running.",
    no_args_is_help=True,
)
agent_app = typer.Typer(
    help="The seeds' command names: `agent plan` is `plan show`, `agent exec` is `run`.",
    no_args_is_help=True,
)
agent_app.command("plan")(plan_cmd.show)
agent_app.command("exec", help=run_cmd.RUN_HELP)(run_cmd.run)

RunIdArg = Annotated[str, typer.Argument(help="Run id printed by `magsag run`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

# How task counts read in `runs list`, in this order.
TALLY_ORDER = [
    (TaskStatus.SUCCEEDED, "ok"),
    (TaskStatus.RUNNING, "running"),
    (TaskStatus.PENDING, "pending"),
    (TaskStatus.FAILED, "failed"),
    (TaskStatus.CONFLICTED, "conflicted"),
    (TaskStatus.CANCELLED, "cancelled"),
    (TaskStatus.SKIPPED, "skipped"),
]
# A run ended from outside the workflow keeps MagsagRunStatus "running": the execution
# status says how it ended (as cli.progress.read_status maps it).
_OUTSIDE = 'MagsagRunStatus = "running" AND ExecutionStatus'
STATUS_QUERIES = {
    RunStatus.RUNNING: f'({_OUTSIDE} = "Running")',
    RunStatus.FAILED: f'(MagsagRunStatus = "failed" OR ({_OUTSIDE} IN '
    '("Failed", "Terminated", "TimedOut")))',
    RunStatus.CANCELLED: f'(MagsagRunStatus = "cancelled" OR ({_OUTSIDE} = "Canceled"))',
}
# A dependency in these states lets its dependents start (once merged).
_READY = (TaskStatus.SUCCEEDED,)
# Temporal fetches of task histories at once in `runs describe`.
HISTORY_FETCHES = 16


# ---------------------------------------------------------------- runs list


@runs_app.command("list")
def list_runs(
    repo: Annotated[Path | None, typer.Option(help="Only runs on this repository.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only runs in this state: " + ", ".join(RunStatus) + ".")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 20,
    json_output: JsonOpt = False,
) -> None:
    """List runs, newest first: plan, repository, state, task counts, cost, timing."""
    if status is not None and status not in set(RunStatus):
        raise fail(f"--status {status}: must be one of {', '.join(RunStatus)}")
    if limit < 1:
        raise fail(f"--limit {limit}: must be at least 1")
    try:
        repo_path = inputs.check_repo(repo) if repo is not None else None
    except inputs.InputError as err:
        raise fail(str(err)) from None
    rows = asyncio.run(_list(repo_path, status and RunStatus(status), limit))
    if json_output:
        print_json(rows)
        return
    if not rows:
        info("no runs found")
        return
    table = [["RUN ID", "PLAN", "REPO", "STATUS", "TASKS", "COST", "STARTED (UTC)", "DURATION"]]
    for row in rows:
        table.append(
            [
                row["run_id"],
                row["plan"] or "?",
                row["repo"] or "?",
                row["status"],
                _tally(row["tasks"]),
                f"${row['cost_usd']:.4f}",
                row["started_at"][:19].replace("T", " "),
                _span(row["duration_seconds"]),
            ]
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def list_query(repo: Path | None, status: RunStatus | None) -> str:
    clauses = ["WorkflowType = 'PlanWorkflow'"]
    if repo is not None:
        clauses.append(f'MagsagRepo = "{repo}"')
    if status is not None:
        clauses.append(STATUS_QUERIES.get(status, f'MagsagRunStatus = "{status.value}"'))
    return " AND ".join(clauses)


async def _list(repo: Path | None, status: RunStatus | None, limit: int) -> list[dict]:
    client = await connect_or_exit(start_embedded=False)
    # SQL visibility orders by close time and refuses ORDER BY: sort here, newest first,
    # and decode memos only of the runs shown.
    executions = [e async for e in client.list_workflows(list_query(repo, status))]
    executions.sort(key=lambda e: e.start_time, reverse=True)
    return await asyncio.gather(*(_run_row(e) for e in executions[:limit]))


async def _run_row(execution: WorkflowExecution) -> dict:
    result = await execution.memo_value(STATUS_MEMO, default=None, type_hint=RunResult)
    attrs = {key.name: value for key, value in execution.typed_search_attributes}
    status = _effective_status(
        result.status if result else RunStatus(attrs.get("MagsagRunStatus", "running")),
        execution.status,
    )
    tasks: dict[str, int] = {}
    for task in result.tasks.values() if result else []:
        tasks[task.status.value] = tasks.get(task.status.value, 0) + 1
    end = execution.close_time or datetime.now(UTC)
    return {
        "run_id": execution.id.removeprefix(C.WORKFLOW_ID_PREFIX),
        "plan": result.plan if result else attrs.get("MagsagPlan"),
        "repo": result.repo if result else attrs.get("MagsagRepo"),
        "status": status.value,
        "execution_status": _execution_status(execution.status),
        "tasks": tasks,
        "cost_usd": result.usage.cost_usd if result else 0.0,
        "started_at": execution.start_time.isoformat(),
        "finished_at": execution.close_time.isoformat() if execution.close_time else None,
        "duration_seconds": round((end - execution.start_time).total_seconds(), 3),
    }


def _effective_status(recorded: RunStatus, execution: WorkflowExecutionStatus | None) -> RunStatus:
    if recorded == RunStatus.RUNNING and execution not in (None, WorkflowExecutionStatus.RUNNING):
        return STATUS_OF_CLOSED.get(execution, RunStatus.FAILED)
    return recorded


def _execution_status(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def _tally(counts: dict[str, int]) -> str:
    parts = [f"{counts[s.value]} {label}" for s, label in TALLY_ORDER if counts.get(s.value)]
    return ", ".join(parts) or "-"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f}s" if seconds < 60 else format_duration(seconds)


# ------------------------------------------------------- reading a history


@dataclass
class Span:
    """One activity, timer or child workflow of a history: opened, maybe started, closed."""

    kind: str  # the activity type, "timer" or "child"
    opened_at: datetime
    opened: Any  # attributes of the scheduling event
    started_at: datetime | None = None
    started: Any = None
    closed_at: datetime | None = None
    outcome: str | None = None  # completed, failed, timed_out, cancelled, terminated, fired
    closed: Any = None


@dataclass
class History:
    first: Any = None  # workflow_execution_started_event_attributes
    started_at: datetime | None = None
    closed_at: datetime | None = None
    spans: list[Span] = field(default_factory=list)


_OPENS: dict[str, Callable[[Any], str]] = {
    "activity_task_scheduled_event_attributes": lambda a: a.activity_type.name,
    "timer_started_event_attributes": lambda a: "timer",
    "start_child_workflow_execution_initiated_event_attributes": lambda a: "child",
}
_STARTS = {
    "activity_task_started_event_attributes": "scheduled_event_id",
    "child_workflow_execution_started_event_attributes": "initiated_event_id",
}
_CLOSES = {
    "activity_task_completed_event_attributes": ("scheduled_event_id", "completed"),
    "activity_task_failed_event_attributes": ("scheduled_event_id", "failed"),
    "activity_task_timed_out_event_attributes": ("scheduled_event_id", "timed_out"),
    "activity_task_canceled_event_attributes": ("scheduled_event_id", "cancelled"),
    "timer_fired_event_attributes": ("started_event_id", "fired"),
    "timer_canceled_event_attributes": ("started_event_id", "cancelled"),
    "child_workflow_execution_completed_event_attributes": ("initiated_event_id", "completed"),
    "child_workflow_execution_failed_event_attributes": ("initiated_event_id", "failed"),
    "child_workflow_execution_canceled_event_attributes": ("initiated_event_id", "cancelled"),
    "child_workflow_execution_terminated_event_attributes": ("initiated_event_id", "terminated"),
    "child_workflow_execution_timed_out_event_attributes": ("initiated_event_id", "timed_out"),
    "start_child_workflow_execution_failed_event_attributes": ("initiated_event_id", "failed"),
}
_WORKFLOW_CLOSES = {
    f"workflow_execution_{kind}_event_attributes"
    for kind in ("completed", "failed", "canceled", "terminated", "timed_out", "continued_as_new")
}


async def read_history(handle: WorkflowHandle) -> History:
    history = History()
    by_id: dict[int, Span] = {}
    async for event in handle.fetch_history_events():
        name = event.WhichOneof("attributes")
        attrs = getattr(event, name) if name else None
        at = event.event_time.ToDatetime(tzinfo=UTC)
        if name == "workflow_execution_started_event_attributes":
            history.first, history.started_at = attrs, at
        elif name in _WORKFLOW_CLOSES:
            history.closed_at = at
        elif name in _OPENS:
            by_id[event.event_id] = Span(_OPENS[name](attrs), at, attrs)
            history.spans.append(by_id[event.event_id])
        elif name in _STARTS and (span := by_id.get(getattr(attrs, _STARTS[name]))):
            span.started_at, span.started = at, attrs
        elif name in _CLOSES and (span := by_id.get(getattr(attrs, _CLOSES[name][0]))):
            span.closed_at, span.outcome, span.closed = at, _CLOSES[name][1], attrs
    return history


async def _decode(client: Client, payloads, type_hint=None) -> Any:
    if not payloads:
        return None
    hints = [type_hint] * len(payloads) if type_hint else None
    return (await client.data_converter.decode(payloads, hints))[0]


@dataclass
class Failure:
    type: str | None
    message: str
    details: dict


async def _failure(client: Client, failure) -> Failure:
    if not failure.HasField("application_failure_info"):
        return Failure(None, failure.message, {})
    app = failure.application_failure_info
    details = await _decode(client, app.details.payloads)
    return Failure(app.type, failure.message, details if isinstance(details, dict) else {})


# ------------------------------------------------------------ runs describe


class AttemptView(BaseModel):
    """One run_agent activity: an attempt of the task (a rate-limited one runs again
    under the same number)."""

    attempt: int
    outcome: str = Field(
        description="succeeded, failed, rate_limited, timed_out, cancelled, running, scheduled"
    )
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    worker: str | None = None
    infrastructure_retries: int = Field(0, description="re-runs after a lost worker")
    last_infrastructure_error: str | None = None
    error_type: str | None = None
    error: str | None = None
    log_path: str | None = None
    commit: str | None = Field(None, description="the checkpoint commit")
    changed_files: list[str] = Field(default_factory=list)
    usage: Usage | None = None


class WaitView(BaseModel):
    kind: str = Field(description="backoff (before a retry) or rate_limit (until its reset)")
    started_at: datetime
    seconds: float
    ended_at: datetime | None = Field(None, description="fired, or cancelled with its task")


class WipView(BaseModel):
    """close_worktree of a failed or cancelled task: partial work saved, worktree gone."""

    at: datetime | None
    outcome: str
    commit: str | None = None
    changed_files: list[str] = Field(default_factory=list)
    worktree_removed: bool = False


class IntegrationView(BaseModel):
    """One integrate activity: a batch of task commits merged in order."""

    scheduled_at: datetime
    at: datetime | None = Field(None, description="when the merge finished")
    tasks: list[str]
    tip: str | None = None
    merged: list[str] = Field(default_factory=list)
    conflicts: dict[str, list[str]] = Field(default_factory=dict)
    outcome: str | None = None


class Entry(BaseModel):
    at: datetime
    offset_seconds: float = Field(description="since the run started")
    event: str
    text: str


class TaskView(BaseModel):
    name: str
    status: TaskStatus
    depends_on: list[str]
    runner: str
    critical: bool
    carried: bool = Field(False, description="kept from the resumed run; did not run here")
    commit: str | None = None
    error: str | None = None
    conflict_files: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    ready_at: datetime | None = Field(None, description="when its dependencies were merged")
    started_at: datetime | None = Field(None, description="its task workflow started")
    finished_at: datetime | None = Field(None, description="its task workflow closed")
    done_at: datetime | None = Field(None, description="merged, or finished unmerged")
    attempts: list[AttemptView] = Field(default_factory=list)
    waits: list[WaitView] = Field(default_factory=list)
    wip: WipView | None = None
    integration: IntegrationView | None = None
    timeline: list[Entry] = Field(default_factory=list)


class PathStep(BaseModel):
    task: str
    status: TaskStatus
    in_progress: bool = Field(description="still running or merging: its times end now")
    ready_at: datetime
    started_at: datetime
    finished_at: datetime
    done_at: datetime
    waiting_seconds: float = Field(description="ready, waiting for a slot or an approval")
    running_seconds: float = Field(description="its task workflow, start to close")
    agent_seconds: float
    retry_wait_seconds: float
    overhead_seconds: float = Field(description="the rest of running: orchestration")
    merging_seconds: float = Field(description="closed until merged")


class CriticalPath(BaseModel):
    """The dependency chain whose finish times set the run's end."""

    tasks: list[str] = Field(default_factory=list)
    steps: list[PathStep] = Field(default_factory=list)
    seconds: float = 0.0
    time: dict[str, float] = Field(
        default_factory=dict,
        description="setup, waiting, agents, retry_waits, orchestration, merging, finishing",
    )


class RunView(BaseModel):
    run_id: str
    plan: dict
    repo: str
    base: str
    status: RunStatus
    execution_status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    integration_branch: str
    integration_commit: str | None
    resumed_from: str | None
    usage: Usage
    gates: dict
    tasks: dict[str, TaskView]
    integrations: list[IntegrationView]
    critical_path: CriticalPath


@runs_app.command()
def describe(run_id: RunIdArg, json_output: JsonOpt = False) -> None:
    """Show a run's plan, a timeline per task and the critical path, from its history.

    The timeline has each attempt with its outcome and error, retry and rate-limit waits,
    checkpoint and WIP commits, worktree removal, merges and conflicts; the critical path
    says where the time went. Works while the run runs and after it ended."""
    events = run_log.read(activity_files.run_dir(run_id))
    if events and not asyncio.run(_history_exists(run_id)):
        # The server no longer has the run (retention, a new server): its file does.
        _describe_from_run_log(run_id, events, json_output)
        return
    view, result = asyncio.run(_describe(run_id))
    if json_output:
        print_json(view.model_dump(mode="json"))
        return
    for line in describe_lines(view, result):
        print(line)


async def _history_exists(run_id: str) -> bool:
    client = await connect_or_exit(start_embedded=False)
    try:
        await client.get_workflow_handle(C.plan_workflow_id(run_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def _describe_from_run_log(run_id: str, events: list[dict], json_output: bool) -> None:
    """Replay <state>/runs/<run>/run.jsonl: the story without Temporal's history."""
    end = next((e for e in reversed(events) if e["event"] == "run_finished"), {})
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "source": "run.jsonl",
                "status": end.get("status", "unknown"),
                "tasks": end.get("tasks", {}),
                "events": events,
            }
        )
        return
    info(f"run {run_id}: the server has no history of it; replaying its run.jsonl")
    start = datetime.fromisoformat(events[0]["at"])
    for event in events:
        offset = (datetime.fromisoformat(event["at"]) - start).total_seconds()
        details = {k: v for k, v in event.items() if k not in ("at", "event", "task")}
        shown = ", ".join(f"{k}={v}" for k, v in details.items() if k not in ("tasks", "gates"))
        print(f"+{offset:7.1f}s  {event.get('task', ''):<20} {event['event']:<18} {shown}")
    if end:
        print(
            f"run {run_id} {end['status']}: "
            + ", ".join(f"{t} {s}" for t, s in end["tasks"].items())
        )


async def _describe(run_id: str) -> tuple[RunView, RunResult]:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    description = await handle.describe()
    result, closed = await read_status(handle)
    plan_history = await read_history(handle)
    [run_input] = await client.data_converter.decode(plan_history.first.input.payloads, [RunInput])
    limit = asyncio.Semaphore(HISTORY_FETCHES)
    started = {C.task_workflow_id(run_id, t.name) for t in run_input.plan.tasks}
    started &= {s.opened.workflow_id for s in plan_history.spans if s.kind == "child"}

    async def task_history(name: str) -> tuple[History | None, list]:
        workflow_id = C.task_workflow_id(run_id, name)
        if workflow_id not in started:
            return None, []
        async with limit:
            task_handle = client.get_workflow_handle(workflow_id)
            history = await read_history(task_handle)
            pending = []
            if history.closed_at is None:
                pending = list((await task_handle.describe()).raw_description.pending_activities)
            return history, pending

    names = [t.name for t in run_input.plan.tasks]
    histories = dict(zip(names, await asyncio.gather(*map(task_history, names)), strict=True))
    end = (description.close_time if closed else None) or datetime.now(UTC)
    builder = _Builder(client, run_input, result, plan_history, end)
    return await builder.build(histories, description.status), result


class _Builder:
    """Turns the plan's and the tasks' histories into a RunView."""

    def __init__(self, client, run_input: RunInput, result: RunResult, plan: History, end):
        self.client, self.input, self.result, self.plan = client, run_input, result, plan
        self.start = plan.started_at
        self.end = end

    async def build(self, histories: dict, execution: WorkflowExecutionStatus | None) -> RunView:
        integrations = await self._integrations()
        prepared = next(
            (s.closed_at for s in self.plan.spans if s.kind == "prepare_integration"), None
        )
        children = {
            s.opened.workflow_id.rsplit("/", 1)[-1]: s for s in self.plan.spans if s.kind == "child"
        }
        tasks: dict[str, TaskView] = {}
        for plan_task in self.input.plan.tasks:
            history, pending = histories[plan_task.name]
            view = await self._task(plan_task, children.get(plan_task.name), history, pending)
            view.integration = next((i for i in integrations if plan_task.name in i.tasks), None)
            view.done_at = _done_at(view)
            tasks[plan_task.name] = view
        for view in tasks.values():
            view.ready_at = _ready_at(view, tasks, prepared)
        for view in tasks.values():
            self._timeline(view, tasks)
        finished = self.result.finished_at if self.result.status != RunStatus.RUNNING else None
        duration = ((finished or self.end) - self.start).total_seconds() if self.start else None
        return RunView(
            run_id=self.input.run_id,
            plan={
                "name": self.input.plan.name,
                "tasks": [
                    t.model_dump(include={"name", "depends_on", "runner", "retries", "critical"})
                    for t in self.input.plan.tasks
                ],
            },
            repo=self.result.repo,
            base=self.result.base,
            status=self.result.status,
            execution_status=_execution_status(execution),
            started_at=self.start,
            finished_at=finished,
            duration_seconds=duration,
            integration_branch=self.result.integration_branch,
            integration_commit=self.result.integration_commit,
            resumed_from=self.result.resumed_from,
            usage=self.result.usage,
            gates={k: g.model_dump(mode="json") for k, g in self.result.gates.items()},
            tasks=tasks,
            integrations=integrations,
            critical_path=critical_path(tasks, self.start, finished or self.end),
        )

    async def _integrations(self) -> list[IntegrationView]:
        views = []
        for span in (s for s in self.plan.spans if s.kind == "integrate"):
            batch = await _decode(self.client, span.opened.input.payloads, IntegrateInput)
            view = IntegrationView(
                scheduled_at=span.opened_at,
                at=span.closed_at,
                tasks=[item.task for item in batch.items],
                outcome=span.outcome,
            )
            if span.outcome == "completed":
                out = await self._result(span, IntegrateOutput)
                view.tip = out.tip
                view.merged = [o.task for o in out.outcomes if o.merged]
                view.conflicts = {o.task: o.conflict_files for o in out.outcomes if not o.merged}
            views.append(view)
        return views

    async def _task(self, plan_task, child: Span | None, history, pending) -> TaskView:
        result = self.result.tasks[plan_task.name]
        view = TaskView(
            name=plan_task.name,
            status=result.status,
            depends_on=plan_task.depends_on,
            runner=plan_task.runner,
            critical=plan_task.critical,
            carried=plan_task.name in self.input.carried,
            commit=result.commit,
            error=result.error,
            conflict_files=result.conflict_files,
            usage=result.usage,
        )
        if child is not None:
            view.started_at = child.started_at or child.opened_at
            view.finished_at = child.closed_at
        if history is None:
            return view
        running = {p.activity_id: p for p in pending}
        last_failure_type = None
        for span in history.spans:
            if span.kind == "run_agent":
                attempt = await self._attempt(span, running.get(span.opened.activity_id))
                last_failure_type = attempt.error_type
                view.attempts.append(attempt)
            elif span.kind == "timer":
                kind = "rate_limit" if last_failure_type == "RateLimited" else "backoff"
                seconds = span.opened.start_to_fire_timeout.ToTimedelta().total_seconds()
                view.waits.append(
                    WaitView(
                        kind=kind,
                        started_at=span.opened_at,
                        seconds=seconds,
                        ended_at=span.closed_at,
                    )
                )
            elif span.kind == "close_worktree":
                view.wip = WipView(at=span.closed_at, outcome=span.outcome or "running")
                if span.outcome == "completed":
                    out = await self._result(span, CloseWorktreeOutput)
                    view.wip.commit, view.wip.changed_files = out.commit, out.changed_files
                    view.wip.worktree_removed = out.removed
        return view

    async def _result(self, span: Span, type_hint):
        return await _decode(self.client, span.closed.result.payloads, type_hint)

    async def _attempt(self, span: Span, pending) -> AttemptView:
        agent_input = await _decode(self.client, span.opened.input.payloads, AgentInput)
        view = AttemptView(
            attempt=agent_input.attempt,
            outcome="scheduled",
            scheduled_at=span.opened_at,
            started_at=span.started_at,
            finished_at=span.closed_at,
        )
        started = span.started
        if started is not None:
            view.worker = started.identity
            view.infrastructure_retries = max(started.attempt - 1, 0)
            if started.HasField("last_failure"):
                view.last_infrastructure_error = started.last_failure.message
        elif pending is not None:  # still running: what describe knows of it
            if pending.HasField("last_started_time"):
                view.started_at = pending.last_started_time.ToDatetime(tzinfo=UTC)
                view.outcome = "running"
            view.worker = pending.last_worker_identity or None
            view.infrastructure_retries = max(pending.attempt - 1, 0)
            if pending.HasField("last_failure"):
                view.last_infrastructure_error = pending.last_failure.message
        if view.started_at and view.finished_at:
            view.duration_seconds = (view.finished_at - view.started_at).total_seconds()
        if span.outcome == "completed":
            out = await self._result(span, AgentOutput)
            view.outcome, view.commit, view.usage = "succeeded", out.commit, out.usage
            view.changed_files, view.log_path = out.changed_files, out.log_path
        elif span.outcome in ("failed", "timed_out"):
            failure = await _failure(self.client, span.closed.failure)
            view.error_type, view.error = failure.type, failure.message
            view.log_path = failure.details.get("log_path")
            view.usage = Usage.model_validate(failure.details.get("usage") or {})
            rate_limited = failure.type == "RateLimited"
            view.outcome = "rate_limited" if rate_limited else span.outcome
            if span.outcome == "timed_out":
                view.error_type = view.error_type or "ActivityTimeout"
        elif span.outcome == "cancelled":
            view.outcome = "cancelled"
        return view

    def _timeline(self, view: TaskView, tasks: dict[str, TaskView]) -> None:
        entries: list[tuple[datetime, str, str]] = []
        add = entries.append
        if view.carried:
            add((self.start, "carried", f"kept from run {self.result.resumed_from}"))
        if view.depends_on and view.ready_at:
            add((view.ready_at, "ready", f"ready: {', '.join(view.depends_on)} merged"))
        gate = self.result.gates.get(self.input.plan.task(view.name).gate or "")
        if gate and gate.at:
            add((gate.at, "gate", f"{gate.id} {gate.status.value} by {gate.by}"))
        if view.started_at:
            queued = _seconds(view.ready_at, view.started_at)
            note = f", {_span(queued)} after it was ready" if queued is not None else ""
            add((view.started_at, "started", f"task workflow started{note}"))
        entries.extend(_attempt_entries(view))
        entries.extend(_closing_entries(view))
        if view.status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED) and not view.attempts:
            add(self._not_run(view, tasks))
        entries.sort(key=lambda e: e[0])
        view.timeline = [
            Entry(at=at, offset_seconds=_seconds(self.start, at) or 0.0, event=kind, text=text)
            for at, kind, text in entries
        ]

    def _not_run(self, view: TaskView, tasks: dict[str, TaskView]) -> tuple[datetime, str, str]:
        """Why a task never ran: a dependency that did not succeed, or the run stopping."""
        blockers = [
            tasks[d] for d in view.depends_on if tasks[d].status not in _READY and tasks[d].done_at
        ]
        at = max((b.done_at for b in blockers), default=self.result.finished_at or self.end)
        why = view.error or (
            ", ".join(f"{b.name} {b.status.value}" for b in blockers)
            if blockers
            else "the run stopped before it could start"
        )
        return at, view.status.value, f"{view.status.value}: {why}"


def _attempt_entries(view: TaskView) -> list[tuple[datetime, str, str]]:
    entries, seen = [], set()
    for attempt in view.attempts:
        again = attempt.attempt in seen
        seen.add(attempt.attempt)
        began = _began(attempt, again)
        entries.append((attempt.started_at or attempt.scheduled_at, "attempt_started", began))
        if attempt.finished_at:
            entries.append((attempt.finished_at, f"attempt_{attempt.outcome}", _ended(attempt)))
    for wait in view.waits:
        what = "backoff before the next attempt"
        if wait.kind == "rate_limit":
            what = "rate limited: waiting for the reset"
        entries.append((wait.started_at, wait.kind, f"{what}, {_span(wait.seconds)}"))
    return entries


def _closing_entries(view: TaskView) -> list[tuple[datetime, str, str]]:
    """WIP save, the task workflow's close, and the merge or conflict."""
    entries = []
    if view.wip and view.wip.at:
        saved = (
            f"partial work saved as WIP commit {view.wip.commit[:10]} "
            f"({_files(view.wip.changed_files)})"
            if view.wip.commit
            else "no partial work to save"
        )
        removed = ", worktree removed" if view.wip.worktree_removed else ""
        entries.append((view.wip.at, "wip_saved", saved + removed))
    if view.finished_at:
        entries.append((view.finished_at, "finished", f"task workflow {_closed_word(view)}"))
    merge = view.integration
    if merge and merge.at and view.name in merge.conflicts:
        files = ", ".join(merge.conflicts[view.name])
        entries.append(
            (merge.at, "conflict", f"merge conflict in {files}; its branch keeps the work")
        )
    elif merge and merge.at and view.name in merge.merged:
        entries.append(
            (merge.at, "merged", f"merged into the integration branch ({merge.tip[:10]})")
        )
    return entries


def _began(attempt: AttemptView, again: bool) -> str:
    text = f"attempt {attempt.attempt} started" + (" again" if again else "")
    if attempt.worker:
        text += f" on worker {attempt.worker}"
    if attempt.infrastructure_retries:
        text += (
            f" (run {attempt.infrastructure_retries + 1} times: a worker was lost;"
            f" last: {attempt.last_infrastructure_error})"
        )
    if attempt.outcome == "running":
        text += ", running"
    return text


def _ended(attempt: AttemptView) -> str:
    took = f" after {_span(attempt.duration_seconds)}" if attempt.duration_seconds else ""
    head = f"attempt {attempt.attempt} {attempt.outcome.replace('_', ' ')}{took}"
    if attempt.outcome == "succeeded":
        saved = (
            f"checkpoint {attempt.commit[:10]} ({_files(attempt.changed_files)})"
            if attempt.commit
            else "nothing changed"
        )
        return f"{head}: {saved}, worktree removed"
    if attempt.error:
        kind = f"{attempt.error_type}: " if attempt.error_type else ""
        error = attempt.error if attempt.error.startswith(kind) else kind + attempt.error
        return f"{head}: {error}"
    return head


def _closed_word(view: TaskView) -> str:
    if view.attempts and view.attempts[-1].outcome == "succeeded":
        return "completed"
    return view.status.value if view.status in FINISHED_TASK_STATUSES else "closed"


def _files(names: list[str]) -> str:
    return f"{len(names)} file{'s' if len(names) != 1 else ''}"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


def _done_at(view: TaskView) -> datetime | None:
    """When the task stopped holding back its dependents or the run."""
    merge = view.integration
    if merge is not None:
        return merge.at
    return view.finished_at


def _ready_at(
    view: TaskView, tasks: dict[str, TaskView], prepared: datetime | None
) -> datetime | None:
    """When its last dependency was merged; for a task without any, when the integration
    branch was ready (None before: no worker has run the plan yet)."""
    if prepared is None or view.carried:
        return None
    if any(tasks[d].status not in _READY for d in view.depends_on):
        return None
    times = [prepared if tasks[d].carried else tasks[d].done_at for d in view.depends_on]
    if any(t is None for t in times):
        return None
    return max(times, default=prepared)


def critical_path(tasks: dict[str, TaskView], start: datetime, end: datetime) -> CriticalPath:
    """Walk back from the task that finished last, through the dependency merged last.

    A task still running or merging counts as ending now, so a running run's path so far
    ends in what it is doing."""
    timed = {
        name: task
        for name, task in tasks.items()
        if task.ready_at and (task.started_at or task.status == TaskStatus.PENDING)
    }
    if not timed or start is None:
        return CriticalPath()
    done = {name: task.done_at or end for name, task in timed.items()}
    chain = [max(timed, key=done.get)]
    while deps := [d for d in timed[chain[-1]].depends_on if d in timed]:
        chain.append(max(deps, key=done.get))
    chain.reverse()
    steps = [_step(timed[name], end) for name in chain]
    time = {
        "setup": _seconds(start, steps[0].ready_at),
        "waiting": sum(s.waiting_seconds for s in steps),
        "agents": sum(s.agent_seconds for s in steps),
        "retry_waits": sum(s.retry_wait_seconds for s in steps),
        "orchestration": sum(s.overhead_seconds for s in steps),
        "merging": sum(s.merging_seconds for s in steps),
        "finishing": _seconds(steps[-1].done_at, end),
    }
    return CriticalPath(
        tasks=chain,
        steps=steps,
        seconds=_seconds(start, end),
        time={k: round(max(v, 0.0), 3) for k, v in time.items()},
    )


def _step(view: TaskView, end: datetime) -> PathStep:
    started = view.started_at or end  # a ready task still waiting to start
    finished = view.finished_at or end
    running = _seconds(started, finished)
    agent = sum(_seconds(a.started_at, a.finished_at or end) or 0.0 for a in view.attempts)
    waits = sum(_seconds(w.started_at, w.ended_at or end) for w in view.waits)
    return PathStep(
        task=view.name,
        status=view.status,
        in_progress=view.done_at is None,
        ready_at=view.ready_at,
        started_at=started,
        finished_at=finished,
        done_at=view.done_at or end,
        waiting_seconds=max(_seconds(view.ready_at, started), 0.0),
        running_seconds=running,
        agent_seconds=round(agent, 3),
        retry_wait_seconds=round(waits, 3),
        overhead_seconds=round(max(running - agent - waits, 0.0), 3),
        merging_seconds=_seconds(finished, view.done_at or end),
    )


def describe_lines(view: RunView, result: RunResult) -> list[str]:
    """The text form of `runs describe`."""
    when = f"started {view.started_at:%Y-%m-%d %H:%M:%S} UTC" if view.started_at else ""
    if view.finished_at:
        when += f", ended after {_span(view.duration_seconds)}"
    elif view.duration_seconds is not None:
        when += f", running for {_span(view.duration_seconds)}"
    lines = [
        f"run {view.run_id} {view.status.value} ({view.execution_status} in Temporal)",
        f"plan {view.plan['name']}, {len(view.tasks)} tasks, on {view.repo} from {view.base}",
        when,
    ]
    if result.error:
        lines.append(f"error: {result.error}")
    if view.usage.cost_usd or view.usage.output_tokens:
        lines.append(f"usage: {cost_text(view.usage)}")
    tip = (view.integration_commit or "")[:10]
    lines.append(f"integration branch {view.integration_branch} at {tip}")
    if view.resumed_from:
        lines.append(f"resumed from run {view.resumed_from}")
    lines.append("")
    lines.append("plan:")
    for task in view.plan["tasks"]:
        deps = f"after {', '.join(task['depends_on'])}" if task["depends_on"] else ""
        retries = f"retries {task['retries']}" if task["retries"] else ""
        flags = "" if task["critical"] else "not critical"
        extra = "  ".join(x for x in (task["runner"], retries, deps, flags) if x)
        lines.append(f"  {task['name']:<24} {extra}")
    for gate in result.gates.values():
        lines.append(gate_line(view.run_id, gate))
    for task in view.tasks.values():
        lines.append("")
        lines.append(task_line(result.tasks[task.name]))
        for entry in task.timeline:
            lines.append(f"  {'+' + _span(entry.offset_seconds):>9}  {entry.text}")
    lines.append("")
    lines.extend(_path_lines(view.critical_path))
    return lines


def _path_lines(path: CriticalPath) -> list[str]:
    if not path.tasks:
        return ["critical path: none yet (no task has started)"]
    so_far = " so far" if path.steps[-1].in_progress else ""
    lines = [f"critical path{so_far}: {' -> '.join(path.tasks)}  ({_span(path.seconds)})"]
    for step in path.steps:
        inner = (
            f"agent {_span(step.agent_seconds)}, retry waits {_span(step.retry_wait_seconds)}, "
            f"orchestration {_span(step.overhead_seconds)}"
        )
        merged = {
            TaskStatus.SUCCEEDED: f"merged after {_span(step.merging_seconds)}",
            TaskStatus.CONFLICTED: f"conflict found after {_span(step.merging_seconds)}",
        }.get(step.status, f"ended {step.status.value}")
        if step.in_progress:
            merged = "still going"
        lines.append(
            f"  {step.task:<24} waited {_span(step.waiting_seconds)}, "
            f"ran {_span(step.running_seconds)} ({inner}), {merged}"
        )
    spent = ", ".join(f"{k.replace('_', ' ')} {_span(v)}" for k, v in path.time.items())
    lines.append(f"where the time went: {spent}")
    return lines


# --------------------------------------------------------------------- logs


def logs(
    run_id: RunIdArg,
    task: Annotated[str, typer.Argument(help="A task of the run's plan.")],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new output until the task or run ends."),
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(help="Which attempt (default: the latest).")
    ] = None,
    events: Annotated[
        bool, typer.Option("--events", help="The agent's parsed events instead of raw output.")
    ] = False,
) -> None:
    """Print a task's agent output (the latest attempt unless --attempt).

    Raw output comes from <state>/runs/<run>/<task>.attempt-<n>.log; --events shows one
    line per event the agent runner recorded in <task>.jsonl instead."""
    raise typer.Exit(asyncio.run(_logs(run_id, task, follow, attempt, events)))


async def _logs(run_id: str, task: str, follow: bool, attempt: int | None, events: bool) -> int:
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    run_input = await run_input_of(client, handle)
    if task not in {t.name for t in run_input.plan.tasks}:
        raise fail(f"run {run_id} has no task {task}")
    if attempt is not None and attempt < 1:
        raise fail(f"--attempt {attempt}: attempts count from 1")
    files = TaskFiles(Path(run_input.paths.log_dir), task)
    known = files.attempts()
    if attempt is not None and attempt not in known and not follow:
        listed = ", ".join(map(str, known)) or "none yet"
        raise fail(f"task {task} of run {run_id} has no attempt {attempt} (attempts: {listed})")
    if not follow:
        if not known:
            result, _ = await read_status(handle)
            why = _no_output_reason(run_input, result, task)
            raise fail(f"task {task} of run {run_id} has no output: {why}", code=1)
        files.show(attempt or known[-1], events, only=attempt or known[-1])
        return 0
    await _follow(handle, files, task, attempt, events)
    return 0


def _no_output_reason(run_input: RunInput, result: RunResult, task: str) -> str:
    if task in run_input.carried:
        return f"it was kept from run {run_input.resumed_from} (see `magsag logs` of that run)"
    status, error = result.tasks[task].status, result.tasks[task].error
    if status == TaskStatus.PENDING:
        return "it has not started yet (--follow waits for it)"
    return f"it is {status.value}" + (f": {error}" if error else "")


class TaskFiles:
    """A task's files under the run's log directory, read incrementally."""

    def __init__(self, log_dir: Path, task: str) -> None:
        self.log_dir, self.task = log_dir, task
        self.offsets: dict[Path, int] = {}
        self.partial = ""

    def log(self, attempt: int) -> Path:
        return self.log_dir / f"{self.task}.attempt-{attempt}.log"

    def attempts(self) -> list[int]:
        prefix, suffix = f"{self.task}.attempt-", ".log"
        found = []
        for path in self.log_dir.glob(f"{prefix}*{suffix}"):
            number = path.name[len(prefix) : -len(suffix)]
            if number.isdigit():
                found.append(int(number))
        return sorted(found)

    def show(self, attempt: int, events: bool, only: int | None) -> None:
        """Print what was added since the last call: raw output of this attempt, or
        the events of attempt `only` (every attempt when None)."""
        if events:
            for line in self._new_lines(self.log_dir / f"{self.task}.jsonl"):
                text = _event_line(line, only)
                if text is not None:
                    print(text, flush=True)
            return
        data = self._read_new(self.log(attempt))
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()

    def _read_new(self, path: Path) -> bytes:
        try:
            with path.open("rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
        except FileNotFoundError:
            return b""
        self.offsets[path] = self.offsets.get(path, 0) + len(data)
        return data

    def _new_lines(self, path: Path) -> list[str]:
        """Complete lines only; a line being written waits for the next call."""
        text = self.partial + self._read_new(path).decode(errors="replace")
        *lines, self.partial = text.split("\n")
        return lines


def _event_line(line: str, attempt: int | None) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or (attempt is not None and event.get("attempt") != attempt):
        return None
    at = str(event.get("at", ""))[11:23]  # HH:MM:SS.mmm of the ISO time
    kind, text = event.get("kind", "?"), event.get("text", "")
    return f"{at}  attempt {event.get('attempt')}  {kind:<12} {text}"


async def _follow(
    handle: WorkflowHandle, files: TaskFiles, task: str, fixed: int | None, events: bool
) -> None:
    """Print the task's output as it grows, attempt after attempt, until it ends."""
    current = fixed or (files.attempts() or [1])[-1]
    while True:
        result, closed = await read_status(handle)
        ended = closed or result.tasks[task].status in FINISHED_TASK_STATUSES
        files.show(current, events, only=fixed)
        if fixed is None and not events and files.log(current + 1).exists():
            current += 1
            info(f"--- attempt {current} ---")
            continue
        if ended:
            return
        await asyncio.sleep(POLL_SECONDS)
