"""TaskWorkflow (SAG): one task in its own worktree, from base commit to checkpoint.

run_agent is one activity per attempt, retried by policy: create the worktree, run
the agent and its checks, make the checkpoint commit, remove the worktree. When the
attempts are spent or the task is cancelled, close_worktree commits the partial work
as WIP on the task branch before the worktree goes (invariant 3).
"""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.activities import (
        AgentInput,
        AgentOutput,
        CloseWorktreeInput,
        CloseWorktreeOutput,
    )
    from magsag.contracts.run import TaskInput, TaskResult, TaskStatus

# Errors a retry cannot fix; the activity also marks them non_retryable.
NON_RETRYABLE_AGENT_ERRORS = ["RunnerNotFound", "RunnerEnvMissing"]


@workflow.defn
class TaskWorkflow:
    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        task = inp.task
        result = TaskResult(name=task.name, status=TaskStatus.RUNNING, started_at=workflow.now())
        branch = C.task_branch(inp.run_id, task.name)
        worktree = f"{inp.paths.worktree_root}/{inp.run_id}/{task.name}"
        try:
            agent = await self._run_agent(inp, branch, worktree)
        except (ActivityError, asyncio.CancelledError) as err:
            saved = await self._save_partial_work(inp, branch, worktree)
            if isinstance(err, asyncio.CancelledError):
                raise
            result.status = TaskStatus.FAILED
            result.error = _error_text(err)
            result.attempts = _failed_attempt(err) or task.retries + 1
            result.commit = saved.commit
            result.finished_at = workflow.now()
            raise ApplicationError(
                f"task {task.name} failed: {result.error}",
                result.model_dump(mode="json"),
                type="TaskFailed",
                non_retryable=True,
            ) from None
        result.status = TaskStatus.SUCCEEDED
        result.attempts = agent.attempt
        result.commit = agent.commit
        result.changed_files = agent.changed_files
        result.log_path = agent.log_path
        result.finished_at = workflow.now()
        return result

    async def _run_agent(self, inp: TaskInput, branch: str, worktree: str) -> AgentOutput:
        task = inp.task
        return await workflow.execute_activity(
            "run_agent",
            AgentInput(
                run_id=inp.run_id,
                task=task.name,
                prompt=task.prompt,
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
            result_type=AgentOutput,
            task_queue=inp.host_queue,
            start_to_close_timeout=timedelta(seconds=task.timeout_seconds) + C.AGENT_TIMEOUT_GRACE,
            heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_attempts=task.retries + 1,
                initial_interval=C.RETRY_INITIAL_INTERVAL,
                maximum_interval=C.RETRY_MAX_INTERVAL,
                non_retryable_error_types=NON_RETRYABLE_AGENT_ERRORS,
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"{task.name}: agent ({task.runner})",
        )

    @staticmethod
    async def _save_partial_work(inp: TaskInput, branch: str, worktree: str):
        return await workflow.execute_activity(
            "close_worktree",
            CloseWorktreeInput(
                repo=inp.paths.repo,
                path=worktree,
                branch=branch,
                run_id=inp.run_id,
                task=inp.task.name,
                mode="wip",
                message=f"magsag: {inp.task.name}",
            ),
            result_type=CloseWorktreeOutput,
            task_queue=inp.host_queue,
            start_to_close_timeout=C.GIT_ACTIVITY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=C.RETRY_MAX_INTERVAL),
            summary=f"{inp.task.name}: save partial work",
        )


def _error_text(err: BaseException) -> str:
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    return str(cause) or type(cause).__name__


def _failed_attempt(err: BaseException) -> int | None:
    cause = err.cause if isinstance(err, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict):
            return detail.get("attempt")
    return None
