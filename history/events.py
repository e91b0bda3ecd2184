"""A workflow's event history as spans: each activity, timer and child workflow with when
it was scheduled, started and closed, and the attributes of those events. A local
activity is one marker, recorded when the workflow task that ran it completed; its span
takes its times from the marker's data.

parse() takes any list of events (a recorded WorkflowHistory's, for one), so what the
rest of history/ builds from spans needs no server; read_history() fetches them.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import DataConverter


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
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # the SDK core's marker name
_WORKFLOW_CLOSES = {
    f"workflow_execution_{kind}_event_attributes"
    for kind in ("completed", "failed", "canceled", "terminated", "timed_out", "continued_as_new")
}


def parse(events: Iterable[HistoryEvent]) -> History:
    history = History()
    by_id: dict[int, Span] = {}
    for event in events:
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
        elif (
            name == "marker_recorded_event_attributes"
            and attrs.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            history.spans.append(_local_activity(attrs, at))
    return history


def _local_activity(attrs, recorded_at: datetime) -> Span:
    """A local activity's span, as the worker's clock saw it (the marker is recorded
    later, with its workflow task): closed when it completed, opened at its first
    schedule, which its data may set a little after the completion (then the two)."""
    data = json.loads(attrs.details["data"].payloads[0].data)
    closed = _timestamp(data.get("complete_time")) or recorded_at
    opened = min(_timestamp(data.get("original_schedule_time")) or closed, closed)
    outcome = "failed" if attrs.HasField("failure") else "completed"
    return Span(data["activity_type"], opened, attrs, opened, attrs, closed, outcome, attrs)


def _timestamp(value: dict | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(value["seconds"] + value.get("nanos", 0) / 1e9, tz=UTC)


async def read_history(handle: WorkflowHandle) -> History:
    return parse([event async for event in handle.fetch_history_events()])


async def read_executions(client: Client, workflow_id: str) -> History:
    """A workflow's history over all its executions (a run that continued as new), as
    one: the first execution's start, the last one's end, every span in order."""
    executions: list[History] = []
    run_id = None  # the current execution first, then each one it continued
    while True:
        history = await read_history(client.get_workflow_handle(workflow_id, run_id=run_id))
        executions.insert(0, history)
        run_id = history.first.continued_execution_run_id if history.first else None
        if not run_id:
            break
    whole = executions[0]
    for later in executions[1:]:
        whole.spans.extend(later.spans)
        whole.closed_at = later.closed_at
    return whole


async def decode(converter: DataConverter, payloads, type_hint=None) -> Any:
    """The first of payloads as type_hint (None when there is none)."""
    if not payloads:
        return None
    hints = [type_hint] * len(payloads) if type_hint else None
    return (await converter.decode(payloads, hints))[0]


@dataclass
class Failure:
    type: str | None
    message: str
    details: dict


async def failure_of(converter: DataConverter, failure) -> Failure:
    """An activity's failure: its ApplicationError type and details, when it has them."""
    if not failure.HasField("application_failure_info"):
        return Failure(None, failure.message, {})
    app = failure.application_failure_info
    details = await decode(converter, app.details.payloads)
    return Failure(app.type, failure.message, details if isinstance(details, dict) else {})
