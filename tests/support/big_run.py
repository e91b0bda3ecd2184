"""A big run made up from scratch, as `runs describe` reads one, with no server: the plan
workflow's history (task workflows started and closed, integration batches) and each
task's history (its agent attempt), built as Temporal events and parsed as recorded
histories are (history/events.py).

The run: `setup-0` -> ... -> `setup-3`, then `n` migrations that each depend on the last
setup task and take longer the later they start; every FAIL_EVERY-th migration fails.
"""

from datetime import UTC, datetime, timedelta

from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowExecutionStatus

from magsag.contracts import constants as C
from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    IntegrateInput,
    IntegrateItem,
    IntegrateOutcome,
    IntegrateOutput,
)
from magsag.contracts.plan import Plan, PlanTask, RunnerSpec
from magsag.contracts.run import RunInput, RunPaths, RunResult, RunStatus, TaskResult, TaskStatus
from magsag.contracts.wire import data_converter
from magsag.history.describe import RunRecords
from magsag.history.events import History, parse

RUN_ID = "big"
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
SETUP = [f"setup-{i}" for i in range(4)]
FAIL_EVERY = 50
CONCURRENCY = 32
BATCH = 8  # tasks merged per integration batch
PATHS = RunPaths(repo="/repo", worktree_root="/worktrees", log_dir="/state/runs/big")
RUNNER = RunnerSpec(command=["bash", "-c", "{prompt}"])


def big_run(n: int) -> RunRecords:
    """The records of a finished run of len(SETUP) + n tasks."""
    names = SETUP + [f"migrate-{i:05d}" for i in range(n)]
    plan = Plan(
        name="migration",
        concurrency=CONCURRENCY,
        runners={"sh": RUNNER},
        tasks=[
            PlanTask(
                name=name,
                prompt="",
                runner="sh",
                depends_on=[] if i == 0 else [SETUP[min(i, len(SETUP)) - 1]],
                timeout_seconds=600.0,
                retries=0,
            )
            for i, name in enumerate(names)
        ],
    )
    run_input = RunInput(
        run_id=RUN_ID,
        plan=plan,
        base="main",
        base_commit="b" * 40,
        paths=PATHS,
        host_queue="q",
        concurrency=CONCURRENCY,
    )
    times = _schedule(plan)
    failed = {name for i, name in enumerate(names[len(SETUP) :]) if i % FAIL_EVERY == 7}
    end = max(finish for _, finish in times.values()) + timedelta(seconds=2)
    result = RunResult(
        run_id=RUN_ID,
        plan=plan.name,
        repo=PATHS.repo,
        base="main",
        integration_branch=C.integration_branch(RUN_ID),
        integration_commit="c" * 40,
        status=RunStatus.FAILED,
        started_at=START,
        finished_at=end,
        tasks={
            name: TaskResult(
                name=name,
                attempts=1,
                started_at=began,
                finished_at=finished,
                status=TaskStatus.FAILED if name in failed else TaskStatus.SUCCEEDED,
                error="AgentFailed: agent exited with code 3" if name in failed else None,
                commit=None if name in failed else f"{i:040x}",
            )
            for i, (name, (began, finished)) in enumerate(times.items())
        },
    )
    return RunRecords(
        run_input=run_input,
        result=result,
        plan=_plan_history(run_input, times, failed, end),
        end=end,
        execution=WorkflowExecutionStatus.COMPLETED,
        tasks={
            name: _task_history(name, began, finished, name in failed)
            for name, (began, finished) in times.items()
        },
    )


def _schedule(plan: Plan) -> dict[str, tuple[datetime, datetime]]:
    """When each task's workflow starts and closes: the setup chain one after another
    (each merged a second after it closed), then the migrations CONCURRENCY at a time,
    each a little longer than the last."""
    times, at = {}, START + timedelta(seconds=1)
    for name in SETUP:
        times[name] = (at, at + timedelta(seconds=20))
        at += timedelta(seconds=21)
    migrations = [t.name for t in plan.tasks if t.name not in SETUP]
    for i, name in enumerate(migrations):
        began = at + timedelta(seconds=(i // CONCURRENCY) * 30)
        times[name] = (began, began + timedelta(seconds=20 + i % CONCURRENCY * 0.25 + i / 1000))
    return times


def _batches(times: dict, failed: set[str]) -> list[tuple[datetime, list[str]]]:
    """When each integration batch starts, and its tasks: a setup task alone as it
    closes, the migrations BATCH at a time in the order they closed."""
    batches = [(times[name][1], [name]) for name in SETUP]
    done = sorted((times[n][1], n) for n in times if n not in SETUP and n not in failed)
    for first in range(0, len(done), BATCH):
        batch = done[first : first + BATCH]
        batches.append((batch[-1][0], [name for _, name in batch]))
    return batches


class _Events:
    """A history's events, numbered as Temporal numbers them."""

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []

    def add(self, at: datetime, kind: str, **attributes) -> int:
        event = HistoryEvent(event_id=len(self.events) + 1)
        event.event_time.FromDatetime(at)
        field = getattr(event, f"{kind}_event_attributes")
        field.CopyFrom(type(field)(**attributes))
        self.events.append(event)
        return event.event_id

    def activity(
        self,
        name: str,
        at: datetime,
        closed: datetime,
        input,
        output=None,
        failure: Failure | None = None,
    ) -> None:
        scheduled = self.add(
            at,
            "activity_task_scheduled",
            activity_id=str(len(self.events)),
            activity_type={"name": name},
            input=_payloads(input),
        )
        self.add(at, "activity_task_started", scheduled_event_id=scheduled, identity="w", attempt=1)
        if failure is None:
            self.add(
                closed,
                "activity_task_completed",
                scheduled_event_id=scheduled,
                result=_payloads(output),
            )
        else:
            self.add(closed, "activity_task_failed", scheduled_event_id=scheduled, failure=failure)


def _plan_history(run_input: RunInput, times: dict, failed: set[str], end: datetime) -> History:
    events = _Events()
    events.add(START, "workflow_execution_started", input=_payloads(run_input))
    events.activity("prepare_integration", START, START + timedelta(seconds=1), {})
    for name, (began, finished) in times.items():
        initiated = events.add(
            began,
            "start_child_workflow_execution_initiated",
            workflow_id=C.task_workflow_id(RUN_ID, name),
        )
        events.add(began, "child_workflow_execution_started", initiated_event_id=initiated)
        events.add(finished, "child_workflow_execution_completed", initiated_event_id=initiated)
    for at, batch in _batches(times, failed):
        items = [IntegrateItem(task=name, commit="d" * 40) for name in batch]
        outcomes = [IntegrateOutcome(task=name, merged=True) for name in batch]
        events.activity(
            "integrate",
            at,
            at + timedelta(seconds=0.5),
            IntegrateInput(repo="/repo", branch="i", run_id=RUN_ID, items=items),
            IntegrateOutput(tip="e" * 40, outcomes=outcomes),
        )
    events.add(end, "workflow_execution_completed")
    return parse(events.events)


def _task_history(name: str, began: datetime, finished: datetime, fails: bool) -> History:
    events = _Events()
    events.add(began, "workflow_execution_started")
    agent = AgentInput(
        run_id=RUN_ID,
        task=name,
        attempt=1,
        prompt="",
        runner=RUNNER,
        repo="/repo",
        branch=name,
        worktree="/w",
        base_commit="b" * 40,
        log_dir=PATHS.log_dir,
        timeout_seconds=600.0,
    )
    ran = finished - timedelta(seconds=1)
    if fails:
        failure = Failure(
            message="agent exited with code 3",
            application_failure_info=ApplicationFailureInfo(type="AgentFailed"),
        )
        events.activity("run_agent", began, ran, agent, failure=failure)
    else:
        output = AgentOutput(
            attempt=1,
            log_path=f"/state/runs/big/{name}.attempt-1.log",
            duration_seconds=(ran - began).total_seconds(),
            commit="f" * 40,
            changed_files=[f"{name}.py"],
        )
        events.activity("run_agent", began, ran, agent, output)
    events.add(finished, "workflow_execution_completed")
    return parse(events.events)


def _payloads(value) -> Payloads:
    return Payloads(payloads=data_converter.payload_converter.to_payloads([value]))
