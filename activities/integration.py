"""Integration activities: the run's integration branch and merging task commits into it.

Merges happen without a checkout (merge-tree + commit-tree + update-ref), so the user's
working tree and base branch are never touched, and each ref move is a compare-and-swap.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import remote_runs, run_log
from magsag.activities.checkouts import holder_of
from magsag.activities.git import (
    GitError,
    check_branch_name,
    commit_tree,
    git,
    merge_base,
    resolve_commit,
    to_application_error,
    trailer_block,
)
from magsag.activities.keepalive import heartbeating
from magsag.contracts import remotes
from magsag.contracts.activities import (
    IntegrateInput,
    IntegrateOutcome,
    IntegrateOutput,
    PrepareIntegrationInput,
    PrepareIntegrationOutput,
)
from magsag.contracts.failures import FailureKind


def _not_found(what: str, repo: str) -> ApplicationError:
    return ApplicationError(
        f"{what} not found in {repo}", type=FailureKind.GIT_ERROR, non_retryable=True
    )


@activity.defn
@heartbeating
async def prepare_integration(input: PrepareIntegrationInput) -> PrepareIntegrationOutput:
    if remotes.is_url(input.repo):
        return await remote_runs.prepare_integration(input)
    repo, ref = input.repo, f"refs/heads/{input.branch}"
    await check_branch_name(input.branch, repo)
    # Existing first: a retry (or a resume) keeps the branch and its merged work.
    tip = await resolve_commit(ref, repo)
    if tip is not None:
        return PrepareIntegrationOutput(tip=tip, created=False)
    base = await resolve_commit(input.base, repo)
    if base is None:
        raise _not_found(f"base {input.base!r}", repo)
    # The empty old value makes this a create-only update: it never moves an existing ref.
    made = await git(
        "update-ref", "-m", "magsag: integration branch", ref, base, "", cwd=repo, check=False
    )
    if made.returncode != 0:
        tip = await resolve_commit(ref, repo)
        if tip is not None:  # created meanwhile by an earlier attempt
            return PrepareIntegrationOutput(tip=tip, created=False)
        raise to_application_error(
            GitError(("update-ref", ref, base, ""), made.stderr, made.returncode)
        )
    activity.logger.info("created %s at %s from %s", input.branch, base, input.base)
    run_log.append(input.log_dir, "run_started", integration_branch=input.branch, base=base)
    return PrepareIntegrationOutput(tip=base, created=True)


async def _merge_tree(tip: str, commit: str, repo: str) -> tuple[str, list[str]]:
    """The merged tree and the conflicted paths (empty when the merge is clean).

    git 2.39 exits 1 both on a conflict and on some errors (an unknown revision), so a
    conflict is recognised by the tree OID that leads its output, not by the exit code.
    """
    args = ("merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", tip, commit)
    found = await git(*args, cwd=repo, check=False)
    fields = [f for f in found.stdout.split("\0") if f]
    if found.returncode not in (0, 1) or not fields:
        raise GitError(args, found.stderr, found.returncode)
    conflicts = list(dict.fromkeys(fields[1:])) if found.returncode == 1 else []
    return fields[0], conflicts


async def _move(ref: str, new: str, old: str, message: str, repo: str) -> None:
    moved = await git("update-ref", "-m", message, ref, new, old, cwd=repo, check=False)
    if moved.returncode != 0:
        # The ref moved under us: a retry re-reads the tip and converges.
        raise ApplicationError(
            f"lost the race to move {ref}: {moved.stderr.strip()}", type=FailureKind.GIT_ERROR
        )


async def _merge_one(
    repo: str, tip: str, commit: str, run_id: str, task: str, careful: bool
) -> tuple[str, list[str]]:
    """Merge `commit` onto `tip`: the new tip and the conflicted paths. `careful` first
    asks whether it is merged already or a fast-forward (a git call more): once this
    batch has made a merge commit, no later commit of it can be either."""
    if careful:
        base = await merge_base(tip, commit, repo)
        if base == commit:
            return tip, []  # already integrated, e.g. by an earlier attempt
        if base == tip:
            return commit, []  # a fast-forward
    tree, conflicts = await _merge_tree(tip, commit, repo)
    if conflicts:
        return tip, conflicts
    message = f"magsag: integrate {task}\n\n{trailer_block(run_id, task)}"
    return await commit_tree(tree, [tip, commit], message, repo), []


async def _tip_and_commits(ref: str, items: list, repo: str) -> tuple[str | None, list[str | None]]:
    """The branch's tip and each item's commit, None for what is not there: one git call
    for the whole batch."""
    names = "".join(f"{name}^{{commit}}\n" for name in [ref, *(item.commit for item in items)])
    try:
        found = await git("cat-file", "--batch-check=%(objectname)", cwd=repo, input=names)
    except GitError as err:
        raise to_application_error(err) from err
    tip, *commits = [
        None if line.endswith(" missing") else line
        for line in found.stdout.split("\n")[: len(items) + 1]
    ]
    return tip, commits


@activity.defn
@heartbeating
async def integrate(input: IntegrateInput) -> IntegrateOutput:
    """Merge a batch of task commits into the integration branch, in order. The merge
    commits are made one on another and the branch moves once, at the end (one
    compare-and-swap): a batch is merged whole or not at all, and a task costs two git
    calls (merge-tree, commit-tree)."""
    if remotes.is_url(input.repo):
        return await remote_runs.integrate(input, integrate)
    repo, ref = input.repo, f"refs/heads/{input.branch}"
    start, commits = await _tip_and_commits(ref, input.items, repo)
    if start is None:
        # Created by prepare_integration and never deleted by magsag: someone else did.
        raise ApplicationError(
            f"integration branch {input.branch} was deleted from {repo} while the run went on",
            type=FailureKind.INTEGRATION_BRANCH_MISSING,
            non_retryable=True,
        )
    holder = await holder_of(ref, repo)
    if holder is not None:
        # Moving it would change that worktree's branch under its files; the workflow
        # waits for the user to check out another branch.
        activity.logger.warning("%s is checked out in %s: not merging", input.branch, holder)
        return IntegrateOutput(tip=start, outcomes=[], checked_out_in=holder)
    tip, tips, outcomes = start, [], []
    try:
        for item, commit in zip(input.items, commits, strict=True):
            if commit is None or item.commit.startswith("-"):
                raise _not_found(f"commit {item.commit!r} of task {item.task}", repo)
            careful = tip == start  # e.g. a retry: an earlier try merged this batch
            tip, conflicts = await _merge_one(repo, tip, commit, input.run_id, item.task, careful)
            tips.append(tip)
            outcomes.append(
                IntegrateOutcome(task=item.task, merged=not conflicts, conflict_files=conflicts)
            )
        if tip != start:
            await _move(ref, tip, start, f"magsag: integrate {_names(input.items)}", repo)
    except GitError as err:
        raise to_application_error(err) from err
    for outcome, after in zip(outcomes, tips, strict=True):
        if outcome.merged:
            activity.logger.info("integrated task %s: tip %s", outcome.task, after)
            run_log.append(input.log_dir, "integrated", task=outcome.task, tip=after)
        else:
            files = outcome.conflict_files
            activity.logger.warning("task %s conflicts on %s", outcome.task, files)
            run_log.append(input.log_dir, "conflict", task=outcome.task, files=files)
    return IntegrateOutput(tip=tip, outcomes=outcomes)


def _names(items: list) -> str:
    """The batch's tasks for the reflog: a few names, then how many more."""
    shown = ", ".join(item.task for item in items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")
