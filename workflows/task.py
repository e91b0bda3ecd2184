"""TaskWorkflow (SAG): one task in its own worktree, from base commit to checkpoint.

run_agent is one activity per attempt: create the worktree, run the agent and its
checks, make the checkpoint commit, remove the worktree. Two kinds of retry:
- the task's own `retries`: an attempt whose agent or checks failed is followed by a
  new attempt, counted here, after a backoff;
- infrastructure: a worker that dies mid-attempt (heartbeat timeout) is retried by
  Temporal as the same attempt, so a crash never uses up the task's retries.
When the attempts are spent or the task is cancelled, close_worktree commits the
partial work as WIP on the task branch before the worktree goes (invariant 3).
"""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import (
        AgentInput,
        AgentOutput,
        CloseWorktreeInput,
        CloseWorktreeOutput,
    )
    from magsag.contracts.failures import (
        NOT_RETRIED_BY_TEMPORAL,
        AttemptFailure,
        FailureKind,
        is_attempt_failure,
        is_permanent,
        kind_of,
    )
    from magsag.contracts.run import TaskInput, TaskResult, TaskStatus, Usage

# A rate-limited attempt waits for the reset and runs again without using a retry;
# this many waits in a row end the task.
MAX_RATE_LIMIT_WAITS = 20
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=1)
# Temporal retries of one attempt lost to a dead worker (or to an error of the
# worker's machine) before the task gives up. A failure that is not the attempt's own
# ends the task once they are spent, instead of using one of the task's retries: a new
# attempt would meet the same machine.
MAX_INFRASTRUCTURE_RETRIES = 10
# Patch: an attempt whose infrastructure retries are spent no longer starts another.
CRASHES_USE_NO_RETRY = "crashes-use-no-retry"
# Patch: a cancelled task returns its result (WIP commit, attempts, usage) and a cancelled
# attempt is not followed by another (before: it failed, or ended cancelled with neither).
CANCELLED_RESULT = "cancelled-task-result"


@workflow.defn
class TaskWorkflow:
    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        task = inp.task
        result = TaskResult(name=task.name, status=TaskStatus.RUNNING, started_at=workflow.now())
        branch = C.task_branch(inp.run_id, task.name)
        worktree = inp.paths.worktree(inp.run_id, task.name)
        attempt, feedback = 1, None
        usages: list[Usage] = []
        rate_limit_waits = 0
        try:
            while True:
                try:
                    workflow.set_current_details(f"attempt {attempt} of {task.retries + 1}")
                    agent = await self._run_agent(inp, branch, worktree, attempt, feedback)
                    break
                except ActivityError as err:
                    usages.append(_usage_of(err))
                    if _cancelled(err) and workflow.patched(CANCELLED_RESULT):
                        raise
                    wait = _rate_limit_wait(err)
                    if wait is not None and rate_limit_waits < MAX_RATE_LIMIT_WAITS:
                        rate_limit_waits += 1
                        workflow.set_current_details(f"rate limited: waiting {wait} for the reset")
                        await workflow.sleep(wait)
                        continue
                    if attempt > task.retries or is_permanent(err):
                        raise
                    if not is_attempt_failure(err) and workflow.patched(CRASHES_USE_NO_RETRY):
                        raise  # Temporal's retries of this attempt are spent: see below
                    attempt, feedback = attempt + 1, _feedback(err)
                    await workflow.sleep(_backoff(attempt))
        except (ActivityError, asyncio.CancelledError) as err:
            saved, unsaved = await self._save_partial_work(inp, worktree)
            cancelled = _cancelled(err) and workflow.patched(CANCELLED_RESULT)
            if isinstance(err, asyncio.CancelledError) and not cancelled:
                raise
            result.status = TaskStatus.CANCELLED if cancelled else TaskStatus.FAILED
            reason = "cancelled" if cancelled else _error_text(err)
            result.error = f"{reason}; {unsaved}" if unsaved else reason
            result.attempts = attempt
            result.attempt_usage = usages
            result.usage = sum(usages, Usage())
            result.commit = saved.commit
            result.finished_at = workflow.now()
            if cancelled:
                return result
            raise ApplicationError(
                f"task {task.name} failed: {result.error}",
                result.model_dump(mode="json"),
                type=FailureKind.TASK_FAILED,
                non_retryable=True,
            ) from None
        usages.append(agent.usage)
        result.attempt_usage = usages
        result.usage = sum(usages, Usage())
        result.status = TaskStatus.SUCCEEDED
        result.attempts = agent.attempt
        result.commit = agent.commit
        result.changed_files = agent.changed_files
        result.log_path = agent.log_path
        result.host = agent.host
        result.finished_at = workflow.now()
        return result

    async def _run_agent(
        self, inp: TaskInput, branch: str, worktree: str, attempt: int, feedback: str | None
    ) -> AgentOutput:
        task = inp.task
        return await workflow.execute_activity(
            activities.run_agent,
            AgentInput(
                run_id=inp.run_id,
                task=task.name,
                attempt=attempt,
                prompt=task.prompt,
                plan_ref=inp.plan_ref,
                feedback=feedback,
                runner=inp.runner,
                repo=inp.paths.repo,
                branch=branch,
                worktree=worktree,
                base_commit=inp.base_commit,
                log_dir=inp.paths.log_dir,
                timeout_seconds=task.timeout_seconds,
                checks=task.checks,
                outputs=task.outputs,
            ),
            **agent_activity(inp.host_queue, task.timeout_seconds),
            summary=f"{task.name}: agent ({task.runner}), attempt {attempt}",
        )

    @staticmethod
    async def _save_partial_work(
        inp: TaskInput, worktree: str
    ) -> tuple[CloseWorktreeOutput, str | None]:
        """The WIP commit of the task's partial work, or why it could not be made."""
        try:
            saved = await workflow.execute_activity(
                activities.close_worktree,
                CloseWorktreeInput.for_task(
                    inp.paths.repo,
                    worktree,
                    inp.run_id,
                    inp.task.name,
                    "wip",
                    log_dir=inp.paths.log_dir,
                    base_commit=inp.base_commit,
                ),
                task_queue=inp.host_queue,
                start_to_close_timeout=C.GIT_ACTIVITY_TIMEOUT,
                heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
                retry_policy=RetryPolicy(
                    maximum_interval=C.RETRY_MAX_INTERVAL,
                    maximum_attempts=C.ACTIVITY_MAX_ATTEMPTS,
                ),
                summary=f"{inp.task.name}: save partial work",
            )
        except ActivityError as err:
            unsaved = f"its partial work was not saved ({_error_text(err)}), see {worktree}"
            return CloseWorktreeOutput(commit=None, removed=False), unsaved
        return saved, None


def agent_activity(host_queue: str, timeout_seconds: float) -> dict:
    """How an agent's activity runs (run_agent, resolve_conflict): on the repository's
    host, its timeout the agent's own plus a grace for killing it, retried by Temporal
    only when its worker is lost, cancelled once the agent is stopped."""
    return dict(
        task_queue=host_queue,
        start_to_close_timeout=timedelta(seconds=timeout_seconds) + C.AGENT_TIMEOUT_GRACE,
        heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(
            maximum_attempts=MAX_INFRASTRUCTURE_RETRIES,
            initial_interval=C.RETRY_INITIAL_INTERVAL,
            maximum_interval=C.RETRY_MAX_INTERVAL,
            non_retryable_error_types=NOT_RETRIED_BY_TEMPORAL,
        ),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


def _cancelled(err: BaseException) -> bool:
    """The task was cancelled: directly, or as the attempt it was waiting for."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return isinstance(cause, (asyncio.CancelledError, CancelledError))


def _error_text(err: BaseException) -> str:
    """The failure's reason, on one line (git and agents print several)."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, TemporalTimeout):
        return (
            f"the attempt's worker was lost {MAX_INFRASTRUCTURE_RETRIES} times in a row "
            f"(last: {str(cause) or 'timeout'}); see the worker's log"
        )
    return " ".join(str(cause).split()) or type(cause).__name__


def _feedback(err: ActivityError) -> str | None:
    """What the failed attempt's Definition of Done said, for the next prompt."""
    failure = AttemptFailure.of(err)
    return failure.feedback if failure else None


def _usage_of(err: ActivityError) -> Usage:
    """A failed attempt costs too; a worker that died reported nothing."""
    failure = AttemptFailure.of(err)
    return failure.usage if failure else Usage()


def _rate_limit_wait(err: ActivityError) -> timedelta | None:
    """How long to wait for a rate limit's reset; None when the failure is another."""
    if kind_of(err) != FailureKind.RATE_LIMITED:
        return None
    failure = AttemptFailure.of(err)
    if failure is None or failure.rate_limit_reset is None:
        return DEFAULT_RATE_LIMIT_WAIT
    return max(failure.rate_limit_reset - workflow.now(), timedelta(seconds=1))


def _backoff(attempt: int) -> timedelta:
    """Wait before attempt n (n >= 2): 1s, 2s, 4s, ... up to RETRY_MAX_INTERVAL."""
    delay = C.RETRY_INITIAL_INTERVAL * 2 ** (attempt - 2)
    return min(delay, C.RETRY_MAX_INTERVAL)
