"""Integration activities: the run's integration branch and merging task commits into it.

Merges happen without a checkout (merge-tree + commit-tree + update-ref), so the user's
working tree and base branch are never touched, and each ref move is a compare-and-swap.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import run_log
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
    repo: str, ref: str, tip: str, commit: str, run_id: str, task: str
) -> tuple[str, list[str]]:
    """Merge `commit` into `ref` (at `tip`); the new tip and the conflicted paths."""
    base = await merge_base(tip, commit, repo)
    if base == commit:
        return tip, []  # already integrated, e.g. by an earlier attempt
    if base == tip:
        await _move(ref, commit, tip, f"magsag: fast-forward {task}", repo)
        return commit, []
    tree, conflicts = await _merge_tree(tip, commit, repo)
    if conflicts:
        return tip, conflicts
    message = f"magsag: integrate {task}\n\n{trailer_block(run_id, task)}"
    new = await commit_tree(tree, [tip, commit], message, repo)
    await _move(ref, new, tip, f"magsag: integrate {task}", repo)
    return new, []


@activity.defn
@heartbeating
async def integrate(input: IntegrateInput) -> IntegrateOutput:
    repo, ref = input.repo, f"refs/heads/{input.branch}"
    tip = await resolve_commit(ref, repo)
    if tip is None:
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
        return IntegrateOutput(tip=tip, outcomes=[], checked_out_in=holder)
    outcomes: list[IntegrateOutcome] = []
    try:
        for item in input.items:
            commit = await resolve_commit(item.commit, repo)
            if commit is None:
                raise _not_found(f"commit {item.commit!r} of task {item.task}", repo)
            tip, conflicts = await _merge_one(repo, ref, tip, commit, input.run_id, item.task)
            if conflicts:
                activity.logger.warning("task %s conflicts on %s", item.task, conflicts)
                run_log.append(input.log_dir, "conflict", task=item.task, files=conflicts)
            else:
                activity.logger.info("integrated task %s: tip %s", item.task, tip)
                run_log.append(input.log_dir, "integrated", task=item.task, tip=tip)
            outcomes.append(
                IntegrateOutcome(task=item.task, merged=not conflicts, conflict_files=conflicts)
            )
    except GitError as err:
        raise to_application_error(err) from err
    return IntegrateOutput(tip=tip, outcomes=outcomes)
