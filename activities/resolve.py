"""resolve_conflict: one attempt of a resolver runner on a task's merge conflict.

The task's commit conflicted with the integration branch. The attempt makes a worktree
on the task's resolve branch (magsag/<run>/tasks/<task>--resolve) at the integration tip,
merges the task's side into it with the conflict markers left in, and runs the resolver
with a prompt that names the conflicted files and carries the intents of both sides: the
task's prompt, and the prompts of the tasks whose commits last changed those files on
the integration branch. Its work is accepted when no conflict marker is left and the
task's own Definition of Done passes; then the merge commit (parents: the tip and the
task's side) is made on the resolve branch and the worktree removed, as a task's
checkpoint is. The agent code runs the resolver (activities/agent.py: its own process
group, heartbeats, log file, checks), so the same invariants hold: a retry after a crash
recognises a resolution already committed, and otherwise starts again from the tip.
"""

import functools
import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import conflicts, plan_store, remote_runs, run_log
from magsag.activities.agent import (
    agent_turn,
    attempt_output,
    run_and_check,
    save_checkpoint,
    worktree_at_base,
)
from magsag.activities.git import GitError, is_ancestor, is_checkpoint
from magsag.activities.keepalive import heartbeating
from magsag.activities.worktree import close_worktree, removal_marker
from magsag.contracts import remotes, run_files
from magsag.contracts.activities import ResolveInput, ResolveOutput
from magsag.contracts.constants import resolve_name
from magsag.contracts.failures import FailureKind

# How much of each prompt the resolver gets, and of how many tasks on the other side.
PROMPT_CHARS = 6000
MAX_SIDES = 8


@activity.defn
@heartbeating
async def resolve_conflict(inp: ResolveInput) -> ResolveOutput:
    if remotes.is_url(inp.agent.repo):
        return await remote_runs.resolve_conflict(inp, resolve_conflict, close_worktree)
    async with agent_turn(inp.agent) as pidfile:
        return await _resolve(inp, pidfile)


async def _resolve(inp: ResolveInput, pidfile) -> ResolveOutput:
    agent, started = inp.agent, time.monotonic()
    log_path = run_files.attempt_log(agent.log_dir, resolve_name(agent.task), agent.attempt)
    checkpoint = inp.closing("checkpoint")
    if removal_marker(agent.worktree).exists():  # committed; the removal was cut short
        return _output(inp, log_path, started, await close_worktree(checkpoint))
    if await worktree_at_base(agent, functools.partial(_resolved_already, inp)):
        activity.logger.info("conflict of %s already resolved", agent.task)
        return _output(inp, log_path, started, await close_worktree(checkpoint))
    try:
        files = await conflicts.merge_with_markers(agent.worktree, inp.commit)
        owners = await conflicts.sides(agent.repo, agent.base_commit, inp.commit, files)
        prompt = await _prompt(inp, files, owners)
    except GitError as err:
        raise ApplicationError(str(err), type=FailureKind.GIT_ERROR) from err
    run_log.append(
        agent.log_dir, "resolve_started", task=agent.task, attempt=agent.attempt, files=files,
        sides=list(owners), runner=agent.runner.kind,
    )  # fmt: skip
    agent = agent.model_copy(update={"prompt": prompt})
    ran = await run_and_check(
        agent, pidfile, log_path, started + agent.timeout_seconds,
        accept=lambda: conflicts.markers_left(agent.worktree, files),
        failed_event="resolve_failed",
    )  # fmt: skip
    usage = ran.usage
    closed = await save_checkpoint(checkpoint, agent.attempt, log_path, usage)
    run_log.append(
        agent.log_dir, "resolved", task=agent.task, attempt=agent.attempt, commit=closed.commit,
        files=files, cost_usd=usage.cost_usd,
    )  # fmt: skip
    return _output(inp, log_path, started, closed, usage, files, list(owners))


def _output(inp, log_path, started, closed, usage=None, files=(), sides=()) -> ResolveOutput:
    out = attempt_output(inp.agent.attempt, log_path, started, closed, usage)
    return ResolveOutput(**dict(out), conflict_files=list(files), sides=list(sides))


async def _resolved_already(inp: ResolveInput, tip: str | None) -> bool:
    """Whether the resolve branch holds this resolution: magsag's commit on top of both
    the tip and the task's side (an earlier round's builds on an older tip)."""
    agent = inp.agent
    return (
        tip is not None
        and tip != agent.base_commit
        and await is_checkpoint(tip, agent.run_id, agent.task, agent.repo)
        and await is_ancestor(agent.base_commit, tip, agent.repo)
        and await is_ancestor(inp.commit, tip, agent.repo)
    )


async def _prompt(inp: ResolveInput, files: list[str], owners: dict[str, list[str]]) -> str:
    """The resolver's prompt: the files, what each side meant, the user's instructions."""
    agent = inp.agent
    listed = "\n".join(f"- {name}" for name in files) or "- (none left: check the merge)"
    parts = [
        f"Resolve a merge conflict. Task `{agent.task}` was done in parallel with other "
        "tasks, and its changes conflict with what they merged before it. This worktree "
        "holds the merge, with git's conflict markers left in these files:\n\n"
        f"{listed}\n\n"
        "Edit them so that both sides' intents hold, remove every conflict marker, and "
        "leave the result in the worktree: magsag commits the merge.",
        f"## Task `{agent.task}` (the side being merged in, after =======)\n\n"
        f"{await _prompt_of(inp, agent.task)}",
    ]
    for task, changed in list(owners.items())[:MAX_SIDES]:
        parts.append(
            f"## Task `{task}` (already merged, before =======; last changed "
            f"{', '.join(changed)})\n\n{await _prompt_of(inp, task)}"
        )
    if inp.instructions.strip():
        parts.append(f"## Instructions\n\n{inp.instructions.strip()}")
    return "\n\n".join(parts) + "\n"


async def _prompt_of(inp: ResolveInput, task: str) -> str:
    """A task's prompt: from the run's stored plan, or as the workflow passed them."""
    agent = inp.agent
    try:
        if agent.plan_ref:
            prompt = await plan_store.prompt_of(agent.repo, agent.plan_ref, task)
        else:
            prompt = inp.prompts[task]
    except (GitError, KeyError, ValueError):
        return "(its prompt is not in this run's plan)"
    prompt = prompt.strip()
    return prompt if len(prompt) <= PROMPT_CHARS else prompt[: PROMPT_CHARS - 1] + "…"
