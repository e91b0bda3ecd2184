"""The run's notifications (`notify:`), sent beside the run, never in its way.

Each moment a target asks for (an approval waiting, a task failed, a conflict, the run's
end) starts one activity per target as a workflow task of its own: the plan's loop goes
on at once, and a target that fails or hangs costs its own few bounded attempts. The
run's end, and a hand-over to the next execution, wait for what is still being sent.
"""

import asyncio

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import NotifyInput
    from magsag.contracts.delivery import Notification, NotifyTarget
    from magsag.contracts.run import RunInput, RunResult, TaskStatus
    from magsag.workflows import texts
    from magsag.workflows.live_state import LiveState

# Patch: a plan's `notify:` targets get notifications (before: no such activities).
NOTIFY = "notify"
EVENT_OF = {TaskStatus.FAILED: "task_failed", TaskStatus.CONFLICTED: "conflict"}


class Notifier:
    def __init__(self, inp: RunInput, result: RunResult, live: LiveState) -> None:
        self._inp, self._result, self._live = inp, result, live
        wanted = bool(inp.plan.notify) and workflow.patched(NOTIFY)
        self._targets: list[NotifyTarget] = inp.plan.notify if wanted else []
        self._sending: list[asyncio.Task] = []

    def tasks_changed(self, changes: dict[str, TaskStatus]) -> None:
        for name, status in changes.items():
            if status in EVENT_OF:
                error = (self._result.tasks[name].error or "")[: texts.NOTIFIED_ERROR_CHARS]
                self._send(EVENT_OF[status], task=name, status=status.value, error=error or None)

    def gates_waiting(self, gates: list[str]) -> None:
        for gate in gates:
            kind, _, name = gate.partition(":")
            self._send("approval_waiting", gate=gate, task=name if kind == "task" else None,
                       status="waiting")  # fmt: skip

    async def run_finished(self) -> None:
        """The run's end, sent last (the others are sent side by side, so they may
        arrive in any order, each with its time)."""
        await self.drain()
        self._send("run_finished", status=self._result.status.value, error=self._result.error)
        await self.drain()

    async def drain(self) -> None:
        if self._sending:
            await workflow.wait(self._sending)
        self._sending = []

    def _send(self, event: str, **fields) -> None:
        targets = [target for target in self._targets if target.wants(event)]
        if not targets:
            return
        result = self._result
        note = Notification(
            run_id=result.run_id,
            plan=result.plan,
            event=event,
            counts=self._live.counts_now(),
            cost_usd=result.usage.cost_usd,
            web_ui=self._inp.web_ui,
            pull_request=result.pull_request.url if result.pull_request else None,
            at=workflow.now(),
            text="",
            **fields,
        )
        note.text = texts.notification_line(note)
        self._sending = [sending for sending in self._sending if not sending.done()]
        for target in targets:
            self._sending.append(asyncio.create_task(self._deliver(target, note)))

    async def _deliver(self, target: NotifyTarget, note: Notification) -> None:
        try:
            await workflow.execute_activity(
                activities.notify,
                NotifyInput(target=target, notification=note, log_dir=self._inp.paths.log_dir),
                task_queue=self._inp.host_queue,
                start_to_close_timeout=C.NOTIFY_ACTIVITY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=C.NOTIFY_ATTEMPTS),
                summary=f"notify {note.event}" + (f" of {note.task}" if note.task else ""),
            )
        except ActivityError as err:  # recorded by the activity; the run goes on
            workflow.logger.warning("%s notification not sent: %s", note.event, texts.reason(err))
