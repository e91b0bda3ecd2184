"""The resolve step of a task whose commit conflicted with the integration branch, when
the plan hands conflicts to a resolver (`on_conflict:`).

Resolver attempts, one resolve_conflict activity each (activities/resolve.py), until one
is accepted or the attempts `retries` allows are spent; then the resolver's partial work
is saved as WIP on the resolve branch, which is never deleted. The plan workflow runs
the step beside its loop, like a task, and merges the resolution through its normal
integration; a resolution that conflicts again (the branch moved meanwhile) gets
another step with the attempts left, on top of that resolution.
"""

import asyncio
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import AgentInput, ResolveInput
    from magsag.contracts.failures import AttemptFailure, is_attempt_failure
    from magsag.contracts.run import RunInput, TaskResult, TaskStatus, Usage
    from magsag.workflows import repo_steps, texts
    from magsag.workflows.task import agent_activity

# Patch: a conflicted task whose plan has on_conflict gets a resolve step (before: it
# ended conflicted at once).
RESOLVE_CONFLICTS = "resolve-conflicts"


@dataclass
class Conflict:
    """A task's conflict while resolvers work on it."""

    side: str  # what the next step merges: the task's commit, or its last resolution
    attempts: int = 0  # resolver attempts used, every step together
    usage: Usage = field(default_factory=Usage)


@dataclass
class Resolution:
    commit: str | None  # the resolved merge to integrate; None: the resolvers failed
    attempts: int  # this step's
    usage: Usage
    error: str | None = None
    files: list[str] = field(default_factory=list)


class Resolvers:
    """A run's resolve steps: the conflicts handed to resolvers and the steps running,
    which the plan workflow waits for beside its tasks."""

    def __init__(self) -> None:
        self.conflicts: dict[str, Conflict] = {}
        self.running: dict[str, asyncio.Task[Resolution]] = {}

    def after_merge(self, inp: RunInput, task: TaskResult, status: TaskStatus, tip: str) -> bool:
        """A conflicted task whose plan hands conflicts to a resolver, with attempts
        left: its resolve step starts (it stays running). A task just merged after a
        resolution is marked resolved. False when the task is done with either way."""
        name = task.name
        conflict = self.conflicts.get(name)
        if status == TaskStatus.SUCCEEDED and conflict is not None:
            task.resolved_conflict, task.error = True, None
            del self.conflicts[name]
        on_conflict = inp.plan.on_conflict_of(name)
        if status != TaskStatus.CONFLICTED or on_conflict is None:
            return False
        if not workflow.patched(RESOLVE_CONFLICTS):
            return False
        conflict = conflict or Conflict(side=task.commit)
        if conflict.attempts > on_conflict.retries:
            return False
        self.conflicts[name] = conflict
        task.resolving = True
        self.running[name] = asyncio.create_task(resolve(inp, name, tip, conflict))
        return True

    def ended(self) -> list[tuple[str, Resolution]]:
        """The steps that have ended since last asked, with how."""
        done = [name for name, step in self.running.items() if step.done()]
        return [(name, self.running.pop(name).result()) for name in done]

    def record(self, inp: RunInput, task: TaskResult, resolution: Resolution) -> TaskResult | None:
        """Record a step's end on its task; what to merge when it resolved the conflict."""
        conflict = self.conflicts[task.name]
        conflict.attempts += resolution.attempts
        conflict.usage += resolution.usage
        task.resolving = False
        task.resolve_usage = conflict.usage
        task.usage = task.usage + resolution.usage
        if resolution.commit is None:
            del self.conflicts[task.name]
            branch = C.task_branch(inp.run_id, C.resolve_name(task.name))
            task.error = (
                f"{task.error}; the resolver failed after {conflict.attempts} attempt(s): "
                f"{resolution.error} (its work is on {branch})"
            )
            return None
        conflict.side = resolution.commit
        task.conflict_files = resolution.files or task.conflict_files
        return task.model_copy(update={"commit": resolution.commit})

    async def cancel(self) -> None:
        """Stop every step; each saves its partial work."""
        for step in self.running.values():
            step.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)
        self.running.clear()


async def resolve(inp: RunInput, name: str, tip: str, conflict: Conflict) -> Resolution:
    """Resolver attempts on the merge of conflict.side into tip, from the next attempt
    number to the last one on_conflict.retries allows."""
    last = inp.plan.on_conflict_of(name).retries + 1
    attempt, feedback, usage, error = conflict.attempts + 1, None, Usage(), None
    step = _input(inp, name, tip, conflict.side, attempt, feedback)
    try:
        while True:
            try:
                out = await _attempt(inp, step)
                done = attempt - conflict.attempts
                return Resolution(out.commit, done, usage + out.usage, files=out.conflict_files)
            except ActivityError as err:
                failure = AttemptFailure.of(err)
                usage += failure.usage if failure else Usage()
                if _cancelled(err):
                    raise
                if attempt >= last or not is_attempt_failure(err):
                    error = texts.reason(err)
                    break
                feedback = failure.feedback if failure else None
            attempt += 1
            delay = C.RETRY_INITIAL_INTERVAL * 2 ** (attempt - 2)
            await workflow.sleep(min(delay, C.RETRY_MAX_INTERVAL))
            step = _input(inp, name, tip, conflict.side, attempt, feedback)
    except (ActivityError, asyncio.CancelledError):
        await _save_partial_work(inp, step)
        raise
    await _save_partial_work(inp, step)
    return Resolution(None, attempt - conflict.attempts, usage, error)


def _input(inp: RunInput, name: str, tip: str, side: str, attempt: int, feedback) -> ResolveInput:
    task, on_conflict = inp.plan.task(name), inp.plan.on_conflict_of(name)
    resolve_as = C.resolve_name(name)
    return ResolveInput(
        agent=AgentInput(
            run_id=inp.run_id,
            task=name,
            attempt=attempt,
            prompt="",
            plan_ref=inp.plan_ref,
            feedback=feedback,
            runner=inp.plan.runners[on_conflict.runner],
            repo=inp.paths.repo,
            branch=C.task_branch(inp.run_id, resolve_as),
            worktree=inp.paths.worktree(inp.run_id, resolve_as),
            base_commit=tip,
            log_dir=inp.paths.log_dir,
            timeout_seconds=task.timeout_seconds,
            checks=task.checks,
            outputs=task.outputs,
        ),
        commit=side,
        instructions=on_conflict.prompt,
        # A run without a stored plan carries the prompts in its input (tests, old runs).
        prompts={} if inp.plan_ref else {t.name: t.prompt for t in inp.plan.tasks},
    )


async def _attempt(inp: RunInput, step: ResolveInput):
    agent = step.agent
    runner = inp.plan.on_conflict_of(agent.task).runner
    return await workflow.execute_activity(
        activities.resolve_conflict,
        step,
        **agent_activity(inp.host_queue, agent.timeout_seconds),
        summary=f"{agent.task}: resolve conflict ({runner}), attempt {agent.attempt}",
    )


async def _save_partial_work(inp: RunInput, step: ResolveInput) -> None:
    """close_worktree of the resolve worktree as WIP (a no-op once it is gone). Its
    failure is logged: the task's conflict is what the run reports."""
    try:
        await repo_steps.repo_activity(
            activities.close_worktree,
            step.closing("wip"),
            inp,
            summary=f"{step.agent.task}: save the resolver's partial work",
        )
    except ActivityError as err:
        workflow.logger.warning(
            "the resolver's work on %s was not saved: %s", step.agent.task, texts.reason(err)
        )


def _cancelled(err: ActivityError) -> bool:
    return isinstance(err.cause, (asyncio.CancelledError, CancelledError))
