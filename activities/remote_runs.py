"""The repo-bound activities for a run on a remote URL, on whichever host takes them.

Each step works in this host's cached clone (clones.py) with the run's paths resolved
under this host's state dir, around the same code a local run uses (passed in as
`here`), and moves the work off the host before it reports (DESIGN invariant 6):
- run_agent fetches what the attempt builds on, and pushes its checkpoint, or the WIP
  of an attempt that failed or was cancelled, to magsag/<run>/tasks/<task>;
- integrate merges onto the remote's integration tip and pushes it, a fast-forward
  only; when another host moved it meanwhile, it fetches and merges again.
Pushes are never forced. When the remote's task branch holds something the new commit
does not build on (an earlier attempt's WIP, pushed from another host), the commit
gets it as one more parent, so the push stays a fast-forward and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import clones, run_log
from magsag.activities.git import commit_tree, git, is_ancestor, resolve_commit
from magsag.activities.plan_store import PLANS_REF
from magsag.contracts import remotes
from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    CloseWorktreeInput,
    CloseWorktreeOutput,
    IntegrateInput,
    IntegrateOutput,
    JudgeInput,
    JudgeOutput,
    PrepareIntegrationInput,
    PrepareIntegrationOutput,
    ResolveInput,
    ResolveOutput,
)
from magsag.contracts.constants import integration_branch, resolve_name, task_branch
from magsag.contracts.failures import FailureKind
from magsag.worker import connection

M = TypeVar("M", bound=BaseModel)
# Pushes lost to another host's in a row before the step fails (and is retried).
MAX_RACES = 10


def _here(path: str | None) -> str | None:
    """A run's path on this host (None stays None: a step with no run log)."""
    return path and remotes.resolve(path, connection.state_dir())


def _plan(plan_ref: str | None) -> list[str]:
    """The refspec of the run's stored plan, which every host reads its prompts from."""
    return [f"{PLANS_REF}{plan_ref}:{PLANS_REF}{plan_ref}"] if plan_ref else []


async def prepare_integration(inp: PrepareIntegrationInput) -> PrepareIntegrationOutput:
    """The integration branch on the remote: kept when it exists, else pushed at the base."""
    url, branch = inp.repo, inp.branch
    clone = await clones.ensure(url)
    wanted = clones.branches(branch, optional=True)
    await clones.fetch(clone, wanted + clones.branches(*filter(None, [inp.base_branch])), url)
    for _ in range(MAX_RACES):
        tip = await clones.remote_tip(clone, branch)
        if tip is not None:  # a retry, or a resumed run: its merged work stays
            await _follow(clone, branch, tip)
            return PrepareIntegrationOutput(tip=tip, created=False)
        base = await resolve_commit(inp.base, clone)
        if base is None:
            raise ApplicationError(
                f"base {inp.base!r} not found on {remotes.shown(url)}",
                type=FailureKind.GIT_ERROR,
                non_retryable=True,
            )
        try:
            await clones.push(clone, base, branch, url)
        except clones.PushRejected:  # made meanwhile by an earlier try of this step
            await clones.fetch(clone, wanted, url)
            continue
        await _follow(clone, branch, base)
        run_log.append(_here(inp.log_dir), "run_started", integration_branch=branch, base=base,
                       remote=url)  # fmt: skip
        return PrepareIntegrationOutput(tip=base, created=True)
    raise _kept_moving(branch, url)


async def run_agent(
    inp: AgentInput,
    here: Callable[..., Awaitable[AgentOutput]],
    close_here: Callable[[CloseWorktreeInput], Awaitable[CloseWorktreeOutput]],
) -> AgentOutput:
    """One attempt in this host's clone; its checkpoint (or WIP) is on the remote
    before it reports."""
    clone = await clones.ensure(inp.repo)
    local = _local_agent(inp, clone)
    refspecs = clones.branches(integration_branch(inp.run_id))  # has the base commit
    # A parked worktree would outlive the run on this host.
    run = functools.partial(here, local, park=False)
    needs = [inp.base_commit]
    return await _attempt(inp.repo, local, refspecs, needs, run, _wip(local), close_here)


async def resolve_conflict(
    inp: ResolveInput,
    here: Callable[[ResolveInput], Awaitable[ResolveOutput]],
    close_here: Callable[[CloseWorktreeInput], Awaitable[CloseWorktreeOutput]],
) -> ResolveOutput:
    """A resolver's attempt in this host's clone: as a task's attempt, on the task's
    resolve branch, from the integration tip and the task's side as the remote has them."""
    agent = inp.agent
    clone = await clones.ensure(agent.repo)
    local = inp.model_copy(update={"agent": _local_agent(agent, clone)})
    sides = (integration_branch(agent.run_id), task_branch(agent.run_id, agent.task))
    run = functools.partial(here, local)
    wip = local.closing("wip")
    refspecs, needs = clones.branches(*sides), [agent.base_commit, inp.commit]
    return await _attempt(agent.repo, local.agent, refspecs, needs, run, wip, close_here)


async def _attempt(
    url: str, local: AgentInput, refspecs: list[str], needs: list[str], run, wip, close_here
):
    """Fetch what the attempt builds on (`needs`, from `refspecs`; its branch; the plan),
    run it, and push its commit; a failed or cancelled attempt's work is pushed as WIP
    before it reports.

    A first try fetches only when this host lacks an object it needs (mostly it has
    them: its own pushes and merges). A retry of the same attempt fetches the attempt's
    branch too: a host lost after pushing the checkpoint leaves it there to reuse. (A
    WIP pushed by an earlier attempt needs no fetch: the push finds it.)"""
    plan = [local.plan_ref] if local.plan_ref else []
    retried = activity.info().attempt > 1
    if retried or await clones.missing(local.repo, [*needs, *plan]):
        refspecs = refspecs + clones.branches(local.branch, optional=True) + _plan(local.plan_ref)
        await clones.fetch(local.repo, refspecs, url)
    if not os.path.lexists(local.worktree):
        await _catch_up(local.repo, local.branch)  # what another host pushed is the start
    try:
        out = await run()
    except (ApplicationError, asyncio.CancelledError):
        await _save_wip(wip, url, close_here)
        raise
    if out.commit:
        out.commit = await _push(local.repo, local.branch, out.commit, url, local.log_dir)
    return out


def _local_agent(inp: AgentInput, clone: str) -> AgentInput:
    return _localized(inp, clone, "worktree", "log_dir")


def _localized(inp: M, clone: str, *paths: str, **more) -> M:
    """A step's input as this host runs it: in its clone, the run's `paths` under its
    own state dir."""
    update = {name: _here(getattr(inp, name)) for name in paths}
    return inp.model_copy(update={"repo": clone, **update, **more})


def _wip(local: AgentInput) -> CloseWorktreeInput:
    """The WIP save of an attempt's worktree, on the attempt's own branch (a task's, or
    a best-of-N candidate's)."""
    return CloseWorktreeInput(
        repo=local.repo, path=local.worktree, branch=local.branch, run_id=local.run_id,
        task=local.task, mode="wip", message=f"magsag: {local.task}", log_dir=local.log_dir,
        base_commit=local.base_commit,
    )  # fmt: skip


async def close_worktree(
    inp: CloseWorktreeInput, here: Callable[[CloseWorktreeInput], Awaitable[CloseWorktreeOutput]]
) -> CloseWorktreeOutput:
    """Save a task's partial work. Its attempts pushed their work as they ended, so on
    any host but the one that ran the last attempt, this only reports what the remote's
    task branch holds."""
    url = inp.repo
    clone = await clones.ensure(url)
    local = _localized(inp, clone, "path", "log_dir", park=False)
    await clones.fetch(clone, clones.branches(inp.branch, optional=True), url)
    if not os.path.lexists(local.path):
        await _catch_up(clone, inp.branch)
    closed = await here(local)
    if closed.commit:
        closed.commit = await _push(clone, inp.branch, closed.commit, url, local.log_dir)
    return closed


async def integrate(
    inp: IntegrateInput, here: Callable[[IntegrateInput], Awaitable[IntegrateOutput]]
) -> IntegrateOutput:
    """Merge the batch onto the remote's integration tip and push it (compare-and-swap:
    a push that only fast-forwards). Another host's push in between: fetch, merge again."""
    url, branch = inp.repo, inp.branch
    clone = await clones.ensure(url)
    local = _localized(inp, clone, log_dir=None)
    tasks = [task_branch(inp.run_id, item.task) for item in inp.items]
    # A task whose conflict a resolver resolved is merged from its resolve branch.
    resolved = [task_branch(inp.run_id, resolve_name(item.task)) for item in inp.items]
    refspecs = clones.branches(branch, *tasks) + clones.branches(*resolved, optional=True)
    for _ in range(MAX_RACES):
        await clones.fetch(clone, refspecs, url)
        start = await clones.remote_tip(clone, branch)
        if start is None:
            raise ApplicationError(
                f"integration branch {branch} was deleted from {remotes.shown(url)} "
                "while the run went on",
                type=FailureKind.INTEGRATION_BRANCH_MISSING,
                non_retryable=True,
            )
        await _follow(clone, branch, start)
        out = await here(local)
        try:
            if out.tip != start:
                await clones.push(clone, out.tip, branch, url)
        except clones.PushRejected:
            activity.logger.info("%s moved on the remote meanwhile: merging again", branch)
            refspecs = clones.branches(branch)  # the task commits are here already
            continue
        log_dir = _here(inp.log_dir)
        for outcome in out.outcomes:
            if outcome.merged:
                run_log.append(log_dir, "integrated", task=outcome.task, tip=out.tip)
            else:
                run_log.append(log_dir, "conflict", task=outcome.task, files=outcome.conflict_files)
        return out
    raise _kept_moving(branch, url)


async def judge_candidates(
    inp: JudgeInput, here: Callable[[JudgeInput], Awaitable[JudgeOutput]]
) -> JudgeOutput:
    """Judge a best-of-N task's candidates, which their hosts pushed, in this host's
    clone; the task's own branch on the remote then points at the winner."""
    url = inp.repo
    clone = await clones.ensure(url)
    local = _localized(inp, clone, "scratch", "log_dir")
    refspecs = clones.branches(*(c.branch for c in inp.candidates if c.commit))
    refspecs += clones.branches(inp.branch, optional=True) + _plan(inp.plan_ref)
    await clones.fetch(clone, refspecs, url)
    out = await here(local)
    winner = next(c for c in inp.candidates if c.number == out.winner)
    await _push(clone, inp.branch, winner.commit or inp.base_commit, url, local.log_dir)
    return out


async def _save_wip(save: CloseWorktreeInput, url: str, close_here) -> None:
    """The failed or cancelled attempt's work, committed and pushed before the next
    attempt may start on another host. The attempt's own failure is what it reports:
    a save that fails is logged."""
    try:
        saved = await asyncio.shield(close_here(save))
        if saved.commit:
            pushing = _push(save.repo, save.branch, saved.commit, url, save.log_dir)
            await asyncio.shield(pushing)
    except Exception as err:  # noqa: BLE001 - the attempt's own error is the one to report
        activity.logger.warning("the partial work of %s was not pushed: %s", save.task, err)


async def _push(clone: str, branch: str, commit: str, url: str, log_dir: str | None) -> str:
    """Push the task's commit to its branch on the remote; returns the commit pushed."""
    for _ in range(MAX_RACES):
        pushed = await clones.remote_tip(clone, branch)
        if pushed == commit:
            return commit
        if pushed is not None and not await is_ancestor(pushed, commit, clone):
            commit = await _also_keeping(clone, branch, commit, pushed)
        try:
            await clones.push(clone, commit, branch, url)
            run_log.append(log_dir, "pushed", branch=branch, commit=commit)
            return commit
        except clones.PushRejected:
            await clones.fetch(clone, clones.branches(branch), url)
    raise _kept_moving(branch, url)


async def _also_keeping(clone: str, branch: str, commit: str, pushed: str) -> str:
    """`commit` again, with `pushed` as one more parent; the local branch moves to it."""
    shown = await git("show", "-s", "--format=%T%n%P%n%B", commit, cwd=clone)
    tree, parents, message = shown.stdout.split("\n", 2)
    again = await commit_tree(tree, [*parents.split(), pushed], message, clone)
    ref = f"refs/heads/{branch}"
    await git("update-ref", "-m", "magsag: keep the pushed work", ref, again, commit, cwd=clone)
    return again


async def _catch_up(clone: str, branch: str) -> None:
    """Bring this host's task branch up to the remote's, where it only moves forward:
    what another host pushed (a checkpoint to reuse, a WIP to keep) is the start."""
    pushed = await clones.remote_tip(clone, branch)
    if pushed is None:
        return
    ref = f"refs/heads/{branch}"
    mine = await resolve_commit(ref, clone)
    if mine == pushed or (mine is not None and not await is_ancestor(mine, pushed, clone)):
        return
    await git("update-ref", "-m", "magsag: as on the remote", ref, pushed, mine or "", cwd=clone)


async def _follow(clone: str, branch: str, tip: str) -> None:
    """This host's copy of a branch only the remote's pushes move (the integration)."""
    await git("update-ref", "-m", "magsag: as on the remote", f"refs/heads/{branch}", tip,
              cwd=clone)  # fmt: skip


def _kept_moving(branch: str, url: str) -> ApplicationError:
    # Retryable: Temporal tries the step again after a pause.
    return ApplicationError(
        f"{branch} kept moving on {remotes.shown(url)} ({MAX_RACES} pushes lost in a row)",
        type=FailureKind.GIT_ERROR,
    )
