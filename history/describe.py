"""Build the `runs describe` view of a run from its plan's and its tasks' histories.

describe_run() reads what Temporal keeps of a run (fetch_records()) and turns those
records into a RunView with build_run_view(), which needs no server (records of a
recorded history work as well): attempts with their outcome and error, retry and
rate-limit waits, WIP saves, merges, each task's timeline and the measured critical path.
A big run's histories are read once each, and building is linear in their events.
"""

import asyncio
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.converter import DataConverter

from magsag.contracts import constants as C
from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    CloseWorktreeInput,
    CloseWorktreeOutput,
    IntegrateInput,
    IntegrateOutput,
    ResolveInput,
    ResolveOutput,
)
from magsag.contracts.durations import format_span, seconds_between
from magsag.contracts.failures import FailureKind
from magsag.contracts.run import RunInput, RunResult, RunStatus, TaskStatus, Usage
from magsag.history.critical_path import measured_path
from magsag.history.events import (
    History,
    Span,
    decode,
    failure_of,
    read_executions,
    read_history,
)
from magsag.history.status import execution_status_name
from magsag.history.timeline import Moment, attempt_entries, closing_entries, resolve_entries
from magsag.history.views import (
    AttemptView,
    Entry,
    IntegrationView,
    RunView,
    TaskView,
    WaitView,
    WipView,
)

# A dependency in these states lets its dependents start (once merged).
_READY = (TaskStatus.SUCCEEDED,)
# Temporal fetches of task histories at once.
HISTORY_FETCHES = 16


@dataclass
class RunRecords:
    """What describe reads of a run."""

    run_input: RunInput
    result: RunResult
    plan: History
    end: datetime  # when the run ended, or now
    execution: WorkflowExecutionStatus | None = None
    tasks: dict[str, History] = field(default_factory=dict)  # tasks whose workflow started
    pending: dict[str, list] = field(default_factory=dict)  # activities of open tasks


async def describe_run(
    client: Client,
    handle: WorkflowHandle,
    result: RunResult,
    closed: bool,
    tasks: Collection[str] | None = None,
) -> RunView:
    """The run's view. result and closed are the run's state as the caller read it
    (history.status). tasks: the tasks to read the histories of (their attempts, waits
    and WIP), with the critical path's; None: every task's.

    The path is found from the plan workflow's history alone, so a view of a few tasks
    of a big run reads those, the path's and no others."""
    records = await fetch_records(client, handle, result, closed, tasks)
    view = await build_run_view(records, client.data_converter)
    if tasks is None:
        return view
    path = set(view.critical_path.tasks) - set(tasks)
    if not path:
        return view
    await read_task_histories(client, records, path)
    return await build_run_view(records, client.data_converter)


async def fetch_records(
    client: Client,
    handle: WorkflowHandle,
    result: RunResult,
    closed: bool,
    tasks: Collection[str] | None = None,
) -> RunRecords:
    """The run's histories: the plan workflow's and those of tasks (None: every task)
    whose workflow started."""
    description = await handle.describe()
    plan_history = await read_executions(client, handle.id)
    run_input = await decode(client.data_converter, plan_history.first.input.payloads, RunInput)
    end = (description.close_time if closed else None) or datetime.now(UTC)
    records = RunRecords(run_input, result, plan_history, end, description.status)
    names = [t.name for t in run_input.plan.tasks] if tasks is None else tasks
    await read_task_histories(client, records, names)
    return records


async def read_task_histories(client: Client, records: RunRecords, names: Iterable[str]) -> None:
    """Add to records the histories of these tasks whose workflow started."""
    run_id = records.run_input.run_id
    children = {s.opened.workflow_id for s in records.plan.spans if s.kind == "child"}
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def read_task(name: str) -> None:
        workflow_id = C.task_workflow_id(run_id, name)
        if workflow_id not in children:
            return
        async with limit:
            task_handle = client.get_workflow_handle(workflow_id)
            records.tasks[name] = history = await read_history(task_handle)
            if history.closed_at is None:
                described = (await task_handle.describe()).raw_description
                records.pending[name] = list(described.pending_activities)

    await asyncio.gather(*(read_task(name) for name in names))


async def build_run_view(records: RunRecords, converter: DataConverter) -> RunView:
    return await _Builder(records, converter).build()


class _Builder:
    """Turns a run's records into a RunView."""

    def __init__(self, records: RunRecords, converter: DataConverter) -> None:
        self.records, self.converter = records, converter
        self.input, self.result, self.plan = records.run_input, records.result, records.plan
        self.start, self.end = self.plan.started_at, records.end
        self.carried = self.input.carried_names()

    async def build(self) -> RunView:
        integrations = await self._integrations()
        prepared = next(
            (s.closed_at for s in self.plan.spans if s.kind == "prepare_integration"), None
        )
        children = {
            s.opened.workflow_id.rsplit("/", 1)[-1]: s for s in self.plan.spans if s.kind == "child"
        }
        # Each task's batch, looked up once: a scan per task is quadratic in a big run.
        merged_in: dict[str, IntegrationView] = {}
        for batch in integrations:
            for name in batch.tasks:
                if name in batch.merged or name not in merged_in:  # a resolution's merge
                    merged_in[name] = batch
        resolves = await self._resolves()
        tasks: dict[str, TaskView] = {}
        for plan_task in self.input.plan.tasks:
            view = await self._task(plan_task, children.get(plan_task.name))
            view.integration = merged_in.get(plan_task.name)
            view.resolves, view.resolve_wip = resolves.get(plan_task.name, ([], None))
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
            execution_status=execution_status_name(self.records.execution),
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
            critical_path=measured_path(tasks, self.start, finished or self.end),
        )

    async def _integrations(self) -> list[IntegrationView]:
        views = []
        for span in (s for s in self.plan.spans if s.kind == "integrate"):
            batch = await decode(self.converter, span.opened.input.payloads, IntegrateInput)
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

    async def _resolves(self) -> dict[str, tuple[list[AttemptView], WipView | None]]:
        """Resolver attempts (on_conflict) and their WIP save, by task: plan workflow steps."""
        found: dict[str, tuple[list[AttemptView], WipView | None]] = {}
        for span in self.plan.spans:
            if span.kind == "resolve_conflict":
                attempt = await self._attempt(span, None, ResolveInput, ResolveOutput)
                step = await decode(self.converter, span.opened.input.payloads, ResolveInput)
                found.setdefault(step.agent.task, ([], None))[0].append(attempt)
            elif span.kind == "close_worktree":  # only resolvers' partial work, here
                save = await decode(self.converter, span.opened.input.payloads, CloseWorktreeInput)
                found[save.task] = (found.get(save.task, ([], None))[0], await self._wip(span))
        return found

    async def _wip(self, span: Span) -> WipView:
        view = WipView(at=span.closed_at, outcome=span.outcome or "running")
        if span.outcome == "completed":
            out = await self._result(span, CloseWorktreeOutput)
            view.commit, view.changed_files = out.commit, out.changed_files
            view.worktree_removed = out.removed
        return view

    async def _task(self, plan_task, child: Span | None) -> TaskView:
        result = self.result.tasks[plan_task.name]
        view = TaskView(
            name=plan_task.name,
            status=result.status,
            depends_on=plan_task.depends_on,
            runner=plan_task.runner,
            critical=plan_task.critical,
            carried=plan_task.name in self.carried,
            commit=result.commit,
            error=result.error,
            conflict_files=result.conflict_files,
            usage=result.usage,
            candidates=result.candidates,
            judge_runner=plan_task.judge_runner,
            judge_usage=result.judge_usage,
        )
        if child is not None:
            view.started_at = child.started_at or child.opened_at
            view.finished_at = child.closed_at
        history = self.records.tasks.get(plan_task.name)
        view.detailed = child is None or history is not None  # never started: nothing to read
        if history is None:
            return view
        running = {p.activity_id: p for p in self.records.pending.get(plan_task.name, [])}
        last_failure_type = None
        for span in history.spans:
            if span.kind == "run_agent":
                attempt = await self._attempt(span, running.get(span.opened.activity_id))
                last_failure_type = attempt.error_type
                view.attempts.append(attempt)
            elif span.kind == "timer":
                kind = "rate_limit" if last_failure_type == FailureKind.RATE_LIMITED else "backoff"
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
                view.wip = await self._wip(span)
        return view

    async def _result(self, span: Span, type_hint):
        return await decode(self.converter, span.closed.result.payloads, type_hint)

    async def _attempt(
        self, span: Span, pending, inputs=AgentInput, outputs=AgentOutput
    ) -> AttemptView:
        """A run_agent span (or, with their types, a resolve_conflict one)."""
        decoded = await decode(self.converter, span.opened.input.payloads, inputs)
        agent_input = getattr(decoded, "agent", decoded)  # a resolver's: ResolveInput.agent
        view = AttemptView(
            attempt=agent_input.attempt,
            outcome="scheduled",
            scheduled_at=span.opened_at,
            started_at=span.started_at,
            finished_at=span.closed_at,
            resumed_session=agent_input.resume_session,
            candidate=agent_input.candidate,
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
            out = await self._result(span, outputs)
            view.outcome, view.commit, view.usage = "succeeded", out.commit, out.usage
            view.changed_files, view.log_path = out.changed_files, out.log_path
            view.session_id = out.session_id
        elif span.outcome in ("failed", "timed_out"):
            failure = await failure_of(self.converter, span.closed.failure)
            view.error_type, view.error = failure.type, failure.message
            view.log_path = failure.details.get("log_path")
            view.usage = Usage.model_validate(failure.details.get("usage") or {})
            view.session_id = failure.details.get("session_id")
            rate_limited = failure.type == FailureKind.RATE_LIMITED
            view.outcome = "rate_limited" if rate_limited else span.outcome
            if span.outcome == "timed_out":
                view.error_type = view.error_type or "ActivityTimeout"
        elif span.outcome == "cancelled":
            view.outcome = "cancelled"
        return view

    def _timeline(self, view: TaskView, tasks: dict[str, TaskView]) -> None:
        entries: list[Moment] = []
        add = entries.append
        if view.carried:
            add((self.start, "carried", f"kept from run {self.result.resumed_from}"))
        if view.depends_on and view.ready_at:
            add((view.ready_at, "ready", f"ready: {', '.join(view.depends_on)} merged"))
        gate = self.result.gates.get(self.input.plan.task(view.name).gate or "")
        if gate and gate.at:
            add((gate.at, "gate", f"{gate.id} {gate.status.value} by {gate.by}"))
        if view.started_at:
            queued = seconds_between(view.ready_at, view.started_at)
            note = f", {format_span(queued)} after it was ready" if queued is not None else ""
            add((view.started_at, "started", f"task workflow started{note}"))
        entries.extend(attempt_entries(view))
        entries.extend(closing_entries(view))
        entries.extend(resolve_entries(view))
        if view.status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED) and not view.attempts:
            add(self._not_run(view, tasks))
        entries.sort(key=lambda e: e[0])
        view.timeline = [
            Entry(
                at=at, offset_seconds=seconds_between(self.start, at) or 0.0, event=kind, text=text
            )
            for at, kind, text in entries
        ]

    def _not_run(self, view: TaskView, tasks: dict[str, TaskView]) -> Moment:
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
