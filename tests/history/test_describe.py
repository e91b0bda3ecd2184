"""The `runs describe` view built from recorded histories: no server, no subprocess.

The fixtures are real runs recorded by tests/workflows/test_replay.py: v3-run-log went
through every path (a retry after a backoff, a failure saved as WIP, a merge conflict,
a skip), v3-run-log-cancelled was cancelled while its agent ran.
"""

import json
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus, WorkflowHistory

from magsag.contracts.run import STATUS_MEMO, RunInput, RunResult, RunStatus, TaskStatus
from magsag.contracts.wire import data_converter
from magsag.history.describe import RunRecords, build_run_view
from magsag.history.events import decode, parse
from magsag.history.views import RunView

FIXTURES = Path(__file__).parents[1] / "fixtures" / "histories"


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


async def _result(history: WorkflowHistory) -> RunResult:
    """The run's result; for a run that did not complete, the state its memo held last
    (as `magsag status` reads it)."""
    last = history.events[-1]
    if last.HasField("workflow_execution_completed_event_attributes"):
        payloads = last.workflow_execution_completed_event_attributes.result.payloads
    else:
        memos = [
            e.workflow_properties_modified_event_attributes.upserted_memo.fields
            for e in history.events
            if e.HasField("workflow_properties_modified_event_attributes")
        ]
        payloads = [next(m[STATUS_MEMO] for m in reversed(memos) if STATUS_MEMO in m)]
    return await decode(data_converter, payloads, RunResult)


async def _view(folder: str, execution: WorkflowExecutionStatus) -> RunView:
    plan = parse(_history(FIXTURES / folder / "plan-run.json").events)
    run_input = await decode(data_converter, plan.first.input.payloads, RunInput)
    records = RunRecords(
        run_input=run_input,
        result=await _result(_history(FIXTURES / folder / "plan-run.json")),
        plan=plan,
        end=plan.closed_at,
        execution=execution,
        tasks={
            path.stem.removeprefix("task-"): parse(_history(path).events)
            for path in (FIXTURES / folder).glob("task-*.json")
        },
    )
    return await build_run_view(records, data_converter)


async def test_a_run_through_every_path_reads_as_it_happened():
    view = await _view("v3-run-log", WorkflowExecutionStatus.COMPLETED)
    assert (view.status, view.execution_status) == (RunStatus.SUCCEEDED, "completed")
    tasks = view.tasks
    assert list(tasks) == ["ok", "flaky", "left", "right", "broken", "after-broken", "last"]

    flaky = tasks["flaky"]
    assert [(a.attempt, a.outcome) for a in flaky.attempts] == [(1, "failed"), (2, "succeeded")]
    first, second = flaky.attempts
    assert first.error_type == "AgentFailed" and "exited with code 1" in first.error
    assert first.log_path.endswith("flaky.attempt-1.log")
    assert second.commit == flaky.commit and second.changed_files
    [backoff] = flaky.waits
    assert backoff.kind == "backoff" and backoff.seconds == 1.0
    assert first.finished_at <= backoff.started_at < second.started_at

    broken = tasks["broken"]
    assert broken.status == TaskStatus.FAILED and broken.wip.commit and broken.wip.worktree_removed
    assert tasks["after-broken"].attempts == []
    assert [e.text for e in tasks["after-broken"].timeline] == ["skipped: broken failed"]
    assert tasks["right"].integration.conflicts == {"right": ["README.md"]}
    assert tasks["right"].timeline[-1].event == "conflict"
    assert tasks["last"].ready_at == tasks["flaky"].done_at  # its later dependency merged
    for task in tasks.values():  # each timeline in time order, from the run's start
        offsets = [entry.offset_seconds for entry in task.timeline]
        assert offsets == sorted(offsets) and offsets[0] >= 0


async def test_the_critical_path_of_a_run_explains_its_duration():
    view = await _view("v3-run-log", WorkflowExecutionStatus.COMPLETED)
    path = view.critical_path
    # `last` ended the run and waited for flaky (retried after a 1 s backoff), not ok.
    assert path.tasks == ["flaky", "last"]
    assert path.seconds == round(view.duration_seconds, 3)
    assert abs(sum(path.time.values()) - path.seconds) < 0.005
    flaky, last = path.steps
    assert flaky.retry_wait_seconds >= 1.0 and last.retry_wait_seconds == 0
    assert last.ready_at == flaky.done_at and not last.in_progress
    for step in path.steps:  # running is the agent, the retry waits and the rest
        parts = step.agent_seconds + step.retry_wait_seconds + step.overhead_seconds
        assert abs(parts - step.running_seconds) < 0.005


async def test_a_cancelled_run_shows_the_cancelled_attempt_and_its_wip():
    view = await _view("v3-run-log-cancelled", WorkflowExecutionStatus.CANCELED)
    assert view.status == RunStatus.CANCELLED
    busy = view.tasks["busy"]
    assert [a.outcome for a in busy.attempts] == ["cancelled"]
    assert busy.wip.commit and busy.wip.worktree_removed
    events = [entry.event for entry in busy.timeline]
    assert events[:2] == ["started", "attempt_started"] and "wip_saved" in events
    assert view.critical_path.tasks == ["busy"]
    assert view.finished_at - view.started_at < timedelta(minutes=1)


async def test_a_run_whose_first_and_last_steps_ran_locally_reads_the_same():
    # Recorded after the local-prepare / local-run-end patches: the integration branch was
    # made by a local activity, a marker in history (history/events.py), not an activity's
    # events. A task without dependencies was ready when that step ended.
    view = await _view("v8-local-run-steps", WorkflowExecutionStatus.COMPLETED)
    plan = parse(_history(FIXTURES / "v8-local-run-steps" / "plan-run.json").events)
    [prepare] = [s for s in plan.spans if s.kind == "prepare_integration"]
    [end] = [s for s in plan.spans if s.kind == "record_run_end"]
    assert (prepare.outcome, end.outcome) == ("completed", "completed")
    assert view.started_at <= prepare.closed_at <= view.tasks["ok"].started_at
    assert view.tasks["ok"].ready_at == prepare.closed_at
    assert view.tasks["last"].ready_at == max(view.tasks["ok"].done_at, view.tasks["flaky"].done_at)
    assert end.closed_at >= max(t.finished_at for t in view.tasks.values() if t.finished_at)
