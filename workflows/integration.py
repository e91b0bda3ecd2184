"""The plan workflow's merges: finished tasks into the run's integration branch, one
integrate activity per batch (serialized: the workflow starts the next batch when this
one is done), waiting while the user has the branch checked out; and, when nothing more
can be merged, why, which ends the run."""

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import IntegrateInput, IntegrateItem, IntegrateOutput
    from magsag.contracts.durations import format_duration
    from magsag.contracts.run import RunInput, RunResult, TaskResult, TaskStatus
    from magsag.workflows import repo_steps, texts
    from magsag.workflows.live_state import LiveState

# Patch: a failed integration activity ends the run with its reason, every task in a
# final state (before: the workflow failed, leaving tasks and search attributes running).
RUN_ERROR = "run-error"


class Integration:
    def __init__(
        self, result: RunResult, live: LiveState, task: Callable[[str], TaskResult]
    ) -> None:
        self._result = result
        self._live = live
        self._task = task  # a task's result, to change (the plan workflow's)
        self.error: str | None = None  # set when nothing more can be merged

    async def merge(self, inp: RunInput, results: list[TaskResult]) -> dict[str, TaskStatus]:
        """Merge finished tasks in order; returns each task's final status. A failure
        retries cannot fix fails these tasks and sets the run's error, which ends the run."""
        try:
            out = await self._unblocked(inp, results)
        except ActivityError as err:
            if not workflow.patched(RUN_ERROR):
                raise
            next_steps = texts.next_steps(inp, err, self._result.integration_commit)
            return self._failed(results, texts.reason(err), next_steps)
        if out.checked_out_in is not None:  # still, after the longest wait
            waited = format_duration(C.CHECKED_OUT_WAIT.total_seconds())
            return self._failed(
                results,
                f"{texts.checked_out(inp, out)} (waited {waited}); "
                "it was not moved under that checkout",
                f"check out another branch there, then `magsag resume {inp.run_id}`",
            )
        self._result.integration_commit = out.tip
        statuses = {}
        for outcome in out.outcomes:
            statuses[outcome.task] = TaskStatus.SUCCEEDED
            if not outcome.merged:
                statuses[outcome.task] = TaskStatus.CONFLICTED
                result = self._task(outcome.task)
                result.conflict_files = outcome.conflict_files
                result.error = "merge conflict in " + ", ".join(outcome.conflict_files)
        return statuses

    def not_merged(self, name: str) -> None:
        self._task(name).error = f"not merged: {self.error}"

    async def _unblocked(self, inp: RunInput, results: list[TaskResult]) -> IntegrateOutput:
        """The integrate activity, again and again while the user has the integration
        branch checked out (moving it would change their files' branch under them), for
        at most CHECKED_OUT_WAIT. No patch needed: only integrate results of this version
        name a checkout, so histories recorded before never loop here."""
        items = [IntegrateItem(task=r.name, commit=r.commit) for r in results]
        waited, polls = timedelta(), 0
        while True:
            out = await repo_steps.repo_activity(
                activities.integrate,
                IntegrateInput(
                    repo=inp.paths.repo,
                    branch=C.integration_branch(inp.run_id),
                    run_id=inp.run_id,
                    items=items,
                    log_dir=inp.paths.log_dir,
                ),
                inp,
                summary="integrate " + ", ".join(item.task for item in items),
            )
            if out.checked_out_in is None or waited >= C.CHECKED_OUT_WAIT:
                self._result.waiting_on = None  # published by the loop awaiting this merge
                return out
            self._wait_on(
                f"{texts.checked_out(inp, out)}; "
                "check out another branch there to let the run go on"
            )
            pause = min(C.RETRY_INITIAL_INTERVAL * 2**polls, C.CHECKED_OUT_POLL)
            await workflow.sleep(pause)
            waited, polls = waited + pause, polls + 1

    def _failed(
        self, results: list[TaskResult], reason: str, next_steps: str
    ) -> dict[str, TaskStatus]:
        """Nothing more can be merged: these tasks fail, and the run ends with the reason."""
        self.error = reason
        self._result.error = f"{reason}; {next_steps}"
        self._result.waiting_on = None
        for result in results:
            self.not_merged(result.name)
        return {result.name: TaskStatus.FAILED for result in results}

    def _wait_on(self, what: str) -> None:
        if self._result.waiting_on != what:
            self._result.waiting_on = what
            self._live.publish()
