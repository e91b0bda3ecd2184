"""prepare_integration / integrate against real repositories, without any checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from magsag.activities.integration import integrate, prepare_integration
from magsag.contracts.activities import (
    IntegrateInput,
    IntegrateItem,
    PrepareIntegrationInput,
)
from tests.support.gitrepo import (
    commit_file,
    git_out,
    make_repo,
    record_git_calls,
    user_side,
    write_file,
)

RUN = "r1"
INTEGRATION = f"magsag/{RUN}/integration"


@pytest.fixture
def repo(tmp_path: Path):
    """A repository whose user checkout is dirty; checked unchanged after each test."""
    path = make_repo(tmp_path / "repo", {"shared.txt": "one\ntwo\nthree\n", "README.md": "r\n"})
    write_file(path, "README.md", "user edit in progress\n")
    write_file(path, "scratch.txt", "untracked\n")
    before = user_side(path)
    yield path
    assert user_side(path) == before


def task_commit(repo: Path, task: str, relpath: str, content: str) -> str:
    """A commit on the task's own branch from main, made in a throwaway worktree."""
    wt = repo.parent / f"wt-{task}"
    git_out(repo, "worktree", "add", "-q", "-b", f"magsag/{RUN}/tasks/{task}", str(wt), "main")
    sha = commit_file(wt, relpath, content, f"task {task}")
    git_out(repo, "worktree", "remove", str(wt))
    return sha


async def prepare(repo: Path, base: str = "main"):
    inp = PrepareIntegrationInput(repo=str(repo), base=base, branch=INTEGRATION)
    return await ActivityEnvironment().run(prepare_integration, inp)


async def run_integrate(repo: Path, *items: tuple[str, str]):
    inp = IntegrateInput(
        repo=str(repo),
        branch=INTEGRATION,
        run_id=RUN,
        items=[IntegrateItem(task=t, commit=c) for t, c in items],
    )
    return await ActivityEnvironment().run(integrate, inp)


def tip(repo: Path) -> str:
    return git_out(repo, "rev-parse", INTEGRATION)


async def test_prepare_creates_once_and_then_reports_the_tip(repo: Path) -> None:
    main = git_out(repo, "rev-parse", "main")
    first = await prepare(repo)
    assert first.created and first.tip == main == tip(repo)

    again = await prepare(repo)
    assert not again.created and again.tip == main

    advanced = task_commit(repo, "a", "a.txt", "a\n")
    git_out(repo, "update-ref", f"refs/heads/{INTEGRATION}", advanced)
    resumed = await prepare(repo)
    assert not resumed.created and resumed.tip == advanced


async def test_prepare_rejects_an_unknown_base(repo: Path) -> None:
    with pytest.raises(ApplicationError) as err:
        await prepare(repo, base="no-such-branch")
    assert err.value.non_retryable and err.value.type == "GitError"
    assert not git_out(repo, "branch", "--list", INTEGRATION)


async def test_integrate_fast_forwards(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "a.txt", "a\n")
    out = await run_integrate(repo, ("a", a))
    assert out.tip == a == tip(repo)
    assert [(o.task, o.merged) for o in out.outcomes] == [("a", True)]


async def test_integrate_merges_parallel_branches(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "a.txt", "a\n")
    b = task_commit(repo, "b", "b.txt", "b\n")
    out = await run_integrate(repo, ("a", a), ("b", b))

    assert all(o.merged for o in out.outcomes)
    assert out.tip == tip(repo)
    assert git_out(repo, "rev-parse", f"{out.tip}^1", f"{out.tip}^2").split() == [a, b]
    files = git_out(repo, "ls-tree", "-r", "--name-only", out.tip).split()
    assert {"a.txt", "b.txt", "shared.txt"} <= set(files)
    body = git_out(repo, "show", "-s", "--format=%B", out.tip)
    assert body.startswith("magsag: integrate b")
    assert f"Magsag-Run: {RUN}\nMagsag-Task: b" in body


async def test_integrate_again_is_a_no_op(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "a.txt", "a\n")
    b = task_commit(repo, "b", "b.txt", "b\n")
    first = await run_integrate(repo, ("a", a), ("b", b))
    again = await run_integrate(repo, ("a", a), ("b", b))
    assert again.tip == first.tip == tip(repo)
    assert all(o.merged for o in again.outcomes)


async def conflicting_batch(repo: Path) -> list[tuple[str, str]]:
    """A prepared integration branch and three tasks: a, c (conflicts with a), d."""
    await prepare(repo)
    a = task_commit(repo, "a", "shared.txt", "one\nTWO by a\nthree\n")
    c = task_commit(repo, "c", "shared.txt", "one\nTWO by c\nthree\n")
    d = task_commit(repo, "d", "d.txt", "d\n")
    return [("a", a), ("c", c), ("d", d)]


async def test_integrate_records_a_conflict_and_goes_on(repo: Path) -> None:
    batch = await conflicting_batch(repo)
    (_, a), _, (_, d) = batch
    out = await run_integrate(repo, *batch)

    by_task = {o.task: o for o in out.outcomes}
    assert by_task["a"].merged and by_task["d"].merged
    assert not by_task["c"].merged and by_task["c"].conflict_files == ["shared.txt"]
    assert out.tip == tip(repo)
    assert git_out(repo, "rev-parse", f"{out.tip}^1", f"{out.tip}^2").split() == [a, d]
    assert git_out(repo, "show", f"{out.tip}:shared.txt") == "one\nTWO by a\nthree"


async def test_a_conflict_leaves_the_ref_untouched(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "shared.txt", "one\nTWO by a\nthree\n")
    await run_integrate(repo, ("a", a))
    c = task_commit(repo, "c", "shared.txt", "one\nTWO by c\nthree\n")
    out = await run_integrate(repo, ("c", c))
    assert out.tip == a == tip(repo)
    assert out.outcomes[0].conflict_files == ["shared.txt"]


async def test_integrate_fails_without_its_branch_or_commit(repo: Path) -> None:
    with pytest.raises(ApplicationError) as err:
        await run_integrate(repo, ("a", git_out(repo, "rev-parse", "main")))
    assert err.value.non_retryable and err.value.type == "IntegrationBranchMissing"
    assert err.value.message == f"integration branch {INTEGRATION} was deleted from {repo} while " \
        "the run went on"  # fmt: skip
    await prepare(repo)
    with pytest.raises(ApplicationError) as err:
        await run_integrate(repo, ("a", "f" * 40))
    assert err.value.non_retryable


async def test_a_lost_ref_race_is_retryable(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "a.txt", "a\n")
    lock = repo / ".git" / "refs" / "heads" / f"{INTEGRATION}.lock"
    lock.touch()  # another writer holds the ref
    with pytest.raises(ApplicationError) as err:
        await run_integrate(repo, ("a", a))
    assert not err.value.non_retryable
    lock.unlink()
    assert (await run_integrate(repo, ("a", a))).tip == a


async def test_a_branch_checked_out_in_a_worktree_is_not_moved(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "a.txt", "a\n")
    before = tip(repo)
    user_wt = repo.parent / "user-wt"
    git_out(repo, "worktree", "add", "-q", str(user_wt), INTEGRATION)

    out = await run_integrate(repo, ("a", a))
    assert (out.checked_out_in, out.outcomes, out.tip) == (str(user_wt), [], before)
    assert tip(repo) == before
    assert git_out(user_wt, "status", "--porcelain") == ""

    git_out(user_wt, "switch", "-q", "--detach")  # the user moves off the branch
    out = await run_integrate(repo, ("a", a))
    assert out.checked_out_in is None and out.tip == a == tip(repo)


async def test_a_branch_being_rebased_in_a_worktree_is_not_moved(repo: Path) -> None:
    await prepare(repo)
    a = task_commit(repo, "a", "shared.txt", "one\nTWO by a\nthree\n")
    user_wt = repo.parent / "user-wt"
    git_out(repo, "worktree", "add", "-q", str(user_wt), INTEGRATION)
    commit_file(user_wt, "shared.txt", "one\nTWO by the user\nthree\n", "mine")
    rebase = subprocess.run(["git", "rebase", a], cwd=user_wt, capture_output=True)
    assert rebase.returncode != 0  # stopped on the conflict, HEAD detached meanwhile

    out = await run_integrate(repo, ("a", a))
    assert out.checked_out_in == str(user_wt) and out.outcomes == []


async def test_integrate_again_after_a_conflict_is_a_no_op(repo: Path) -> None:
    # A retried batch with a conflict in it: nothing merged twice, no empty merge commit.
    batch = await conflicting_batch(repo)
    first = await run_integrate(repo, *batch)
    again = await run_integrate(repo, *batch)
    assert again.tip == first.tip == tip(repo)
    assert [o.merged for o in again.outcomes] == [True, False, True]


async def test_a_batch_costs_two_git_calls_a_task(repo: Path, tmp_path, monkeypatch) -> None:
    # merge-tree and commit-tree for each task; the branch moves once for the batch.
    await prepare(repo)
    items = [(f"t{n}", task_commit(repo, f"t{n}", f"t{n}.txt", f"{n}\n")) for n in range(10)]
    log = record_git_calls(tmp_path, monkeypatch)
    out = await run_integrate(repo, *items)
    assert all(o.merged for o in out.outcomes) and out.tip == tip(repo)
    calls = log.read_text().splitlines()
    assert len(calls) <= 2 * len(items) + 4, calls
    assert sum(call.startswith("update-ref") for call in calls) == 1
    merged = git_out(repo, "log", "--format=%s", "--first-parent", INTEGRATION).splitlines()
    assert merged[:9] == [f"magsag: integrate t{n}" for n in range(9, 0, -1)]
