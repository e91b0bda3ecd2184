"""TaskWorkflow (SAG): one task in its own worktree, from base commit to checkpoint.

run_agent is one activity per attempt: create the worktree, run the agent and its
checks, make the checkpoint commit, remove the worktree. Two kinds of retry:
- the task's own `retries`: an attempt whose agent or checks failed is followed by a
  new attempt, counted here, after a backoff;
- infrastructure: a worker that dies mid-attempt (heartbeat timeout) is retried by
  Temporal as the same attempt, so a crash never uses up the task's retries.
When the attempts are spent or the task is cancelled, close_worktree commits the
partial work as WIP on the task branch before the worktree goes (invariant 3).

Sessions that continue: after a rate limit's wait the same attempt continues the agent's
own session in the worktree it left (no reset), and with `retry: continue` so does the
next attempt after failed checks, told what failed. An attempt whose agent reported no
session starts from the base commit as before.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

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
    from magsag.contracts.run import (
        AgentSession,
        CandidateResult,
        TaskInput,
        TaskResult,
        TaskStatus,
        Usage,
    )
    from magsag.workflows import attempt_errors as errors
    from magsag.workflows import best_of, repo_steps

# A rate-limited attempt waits for the reset and runs again without using a retry;
# this many waits in a row end the task.
MAX_RATE_LIMIT_WAITS = 20
# Patch: an attempt whose infrastructure retries are spent no longer starts another.
CRASHES_USE_NO_RETRY = "crashes-use-no-retry"
# Patch: a cancelled task returns its result (WIP commit, attempts, usage) and a cancelled
# attempt is not followed by another (before: it failed, or ended cancelled with neither).
CANCELLED_RESULT = "cancelled-task-result"
# Patch: a rate-limited attempt, and a retry after failed checks under `retry: continue`,
# continue the agent's session in the kept worktree (before: each started from the base).
CONTINUED_SESSIONS = "continued-sessions"
# What a retry may continue: the agent finished, its Definition of Done fell short.
CONTINUABLE = frozenset({FailureKind.CHECK_FAILED, FailureKind.OUTPUT_MISSING})
# Patch: a task with `candidates:` runs them side by side and keeps the best (before: no
# such field, so histories recorded before never take this path).
BEST_OF_N = "best-of-n"


@dataclass
class _Lane:
    """One agent's line of attempts: the task's own, or one best-of-N candidate's, with its
    branch, worktree and what its attempts spent and reported."""

    name: str  # the task's, or <task>--candidate-<n>: its branch, worktree and files
    runner: str
    branch: str
    worktree: str
    candidate: int | None = None
    attempt: int = 1
    usages: list[Usage] = field(default_factory=list)

    @classmethod
    def of(cls, inp: TaskInput, runner: str, candidate: int | None = None) -> "_Lane":
        name = inp.task.name if candidate is None else C.candidate_name(inp.task.name, candidate)
        return cls(
            name=name,
            runner=runner,
            branch=C.task_branch(inp.run_id, name),
            worktree=inp.paths.worktree(inp.run_id, name),
            candidate=candidate,
        )

    def label(self) -> str:
        return f"candidate {self.candidate}: " if self.candidate is not None else ""


@workflow.defn
class TaskWorkflow:
    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        task = inp.task
        result = TaskResult(name=task.name, status=TaskStatus.RUNNING, started_at=workflow.now())
        if task.candidates and workflow.patched(BEST_OF_N):
            return await self._best_of(inp, result)
        lane = _Lane.of(inp, task.runner)
        try:
            agent = await self.attempts(inp, lane, result)
        except (ActivityError, asyncio.CancelledError) as err:
            saved, unsaved = await self.save_partial_work(inp, lane)
            cancelled = errors.cancelled(err) and workflow.patched(CANCELLED_RESULT)
            if isinstance(err, asyncio.CancelledError) and not cancelled:
                raise
            result.status = TaskStatus.CANCELLED if cancelled else TaskStatus.FAILED
            reason = "cancelled" if cancelled else errors.error_text(err)
            result.error = f"{reason}; {unsaved}" if unsaved else reason
            result.attempts = lane.attempt
            result.attempt_usage = lane.usages
            result.usage = sum(lane.usages, Usage())
            result.commit = saved.commit
            result.finished_at = workflow.now()
            if cancelled:
                return result
            raise errors.task_failed(result) from None
        result.attempt_usage = lane.usages
        result.usage = sum(lane.usages, Usage())
        result.succeeded_with(agent)
        result.attempts = agent.attempt
        result.finished_at = workflow.now()
        return result

    async def _best_of(self, inp: TaskInput, result: TaskResult) -> TaskResult:
        """N candidates side by side, each its own attempts on its own branch; then the
        judge picks among those that passed and the task's branch takes the winner."""
        lanes = [_Lane.of(inp, r, n) for n, r in enumerate(inp.task.candidates, 1)]
        ended: dict[int, CandidateResult] = {}
        outputs: dict[int, AgentOutput] = {}
        try:
            await asyncio.gather(
                *(self._candidate(inp, lane, result, ended, outputs) for lane in lanes)
            )
        except asyncio.CancelledError:
            best_of.totals(result, list(ended.values()))
            result.status, result.error = TaskStatus.CANCELLED, "cancelled"
            result.finished_at = workflow.now()
            return result
        best_of.totals(result, list(ended.values()))
        judging = best_of.judge_input(inp, result.candidates)
        if not judging.candidates:
            result.status, result.error = TaskStatus.FAILED, best_of.none_passed(result)
            result.finished_at = workflow.now()
            raise errors.task_failed(result)
        workflow.set_current_details(f"judging {len(judging.candidates)} candidates")
        try:
            judged = await repo_steps.repo_activity(
                activities.judge_candidates,
                judging,
                inp,
                f"{inp.task.name}: judge {len(judging.candidates)} candidates",
                timeout=C.JUDGE_TIMEOUT + C.GIT_ACTIVITY_TIMEOUT,
            )
        except ActivityError as err:
            reason = f"judging failed: {errors.error_text(err)}"
            result.status, result.error = TaskStatus.FAILED, reason
            result.finished_at = workflow.now()
            raise errors.task_failed(result) from None
        best_of.crown(result, judged, outputs)
        result.finished_at = workflow.now()
        return result

    async def _candidate(self, inp, lane: _Lane, result, ended: dict, outputs: dict) -> None:
        """One candidate to its end; a failed or cancelled one saves its partial work."""
        try:
            agent = await self.attempts(inp, lane, result)
        except (ActivityError, asyncio.CancelledError) as err:
            saved, unsaved = await self.save_partial_work(inp, lane)
            status = TaskStatus.CANCELLED if errors.cancelled(err) else TaskStatus.FAILED
            error = "cancelled" if errors.cancelled(err) else errors.error_text(err)
            ended[lane.candidate] = best_of.not_passed(
                lane.candidate, lane.runner, inp, status,
                f"{error}; {unsaved}" if unsaved else error,
                saved.commit, lane.attempt, sum(lane.usages, Usage()), workflow.now(),
            )  # fmt: skip
            if isinstance(err, asyncio.CancelledError):
                raise
            return
        outputs[lane.candidate] = agent
        usage = sum(lane.usages, Usage())
        ended[lane.candidate] = best_of.passed(
            lane.candidate, lane.runner, inp, agent, usage, workflow.now()
        )

    async def attempts(self, inp: TaskInput, lane: _Lane, result: TaskResult) -> AgentOutput:
        """Attempts of one agent until one passes; raises the last failure when the task's
        retries are spent (lane.attempt and lane.usages say what they cost)."""
        task = inp.task
        feedback: str | None = None
        session: str | None = None  # the agent's session the next run continues
        rate_limit_waits = 0
        while True:
            attempt = lane.attempt
            try:
                workflow.set_current_details(
                    f"{lane.label()}attempt {attempt} of {task.retries + 1}"
                )
                agent = await self._run_agent(inp, lane, feedback, session)
                _record_session(result, lane, agent.session_id, session, agent.session_lost)
                lane.usages.append(agent.usage)
                return agent
            except ActivityError as err:
                lane.usages.append(errors.usage_of(err))
                failure = AttemptFailure.of(err)
                _record_session(
                    result, lane, failure and failure.session_id, session,
                    failure and failure.session_lost,
                )  # fmt: skip
                if errors.cancelled(err) and workflow.patched(CANCELLED_RESULT):
                    raise
                wait = errors.rate_limit_wait(err)
                if wait is not None and rate_limit_waits < MAX_RATE_LIMIT_WAITS:
                    rate_limit_waits += 1
                    if errors.continues(failure) and workflow.patched(CONTINUED_SESSIONS):
                        # The session already holds the prompt and any feedback.
                        session, feedback = failure.session_id, None
                    workflow.set_current_details(
                        f"{lane.label()}rate limited: waiting {wait} for the reset"
                    )
                    await workflow.sleep(wait)
                    continue
                if attempt > task.retries or is_permanent(err):
                    raise
                if not is_attempt_failure(err) and workflow.patched(CRASHES_USE_NO_RETRY):
                    raise  # Temporal's retries of this attempt are spent: see below
                lane.attempt, feedback, session = attempt + 1, errors.feedback(err), None
                if (
                    task.retry == "continue"
                    and kind_of(err) in CONTINUABLE
                    and errors.continues(failure)
                    and workflow.patched(CONTINUED_SESSIONS)
                ):
                    session = failure.session_id
                await workflow.sleep(errors.backoff(lane.attempt))

    async def _run_agent(
        self, inp: TaskInput, lane: _Lane, feedback: str | None, session: str | None
    ) -> AgentOutput:
        task = inp.task
        candidate = f", candidate {lane.candidate}" if lane.candidate is not None else ""
        resumed = f", continuing session {session}" if session else ""
        return await workflow.execute_activity(
            activities.run_agent,
            AgentInput(
                run_id=inp.run_id,
                task=lane.name,
                attempt=lane.attempt,
                candidate=lane.candidate,
                plan_task=task.name if lane.candidate is not None else None,
                prompt=task.prompt,
                plan_ref=inp.plan_ref,
                feedback=feedback,
                resume_session=session,
                runner=inp.runner if lane.candidate is None else inp.runners[lane.runner],
                repo=inp.paths.repo,
                branch=lane.branch,
                worktree=lane.worktree,
                base_commit=inp.base_commit,
                log_dir=inp.paths.log_dir,
                timeout_seconds=task.timeout_seconds,
                checks=task.checks,
                outputs=task.outputs,
            ),
            **agent_activity(inp.host_queue, task.timeout_seconds),
            summary=f"{task.name}: agent ({lane.runner}), attempt {lane.attempt}"
            + candidate
            + resumed,
        )

    @staticmethod
    async def save_partial_work(
        inp: TaskInput, lane: _Lane
    ) -> tuple[CloseWorktreeOutput, str | None]:
        """The WIP commit of the agent's partial work, or why it could not be made."""
        try:
            saved = await repo_steps.repo_activity(
                activities.close_worktree,
                CloseWorktreeInput.for_task(
                    inp.paths.repo,
                    lane.worktree,
                    inp.run_id,
                    lane.name,
                    "wip",
                    log_dir=inp.paths.log_dir,
                    base_commit=inp.base_commit,
                ),
                inp,
                f"{lane.name}: save partial work",
            )
        except ActivityError as err:
            why = errors.error_text(err)
            unsaved = f"its partial work was not saved ({why}), see {lane.worktree}"
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
            maximum_attempts=errors.MAX_INFRASTRUCTURE_RETRIES,
            initial_interval=C.RETRY_INITIAL_INTERVAL,
            maximum_interval=C.RETRY_MAX_INTERVAL,
            non_retryable_error_types=NOT_RETRIED_BY_TEMPORAL,
        ),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


def _record_session(
    result: TaskResult,
    lane: _Lane,
    session_id: str | None,
    resumed: str | None,
    lost: str | None = None,
) -> None:
    """The session a run reported; `lost`: the one it was to continue was not found
    (the activity then ran the attempt afresh: no workflow command differs)."""
    if session_id:
        result.sessions.append(
            AgentSession(
                attempt=lane.attempt,
                session_id=session_id,
                resumed=bool(resumed) and not lost,
                lost=lost,
                candidate=lane.candidate,
            )
        )
