"""create_worktree / close_worktree against real repositories."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from magsag.activities.repo_lock import LOCK_NAME
from magsag.activities.worktree import close_worktree, create_worktree, list_worktrees
from magsag.contracts.activities import CloseWorktreeInput, CreateWorktreeInput
from tests.support.gitrepo import commit_file, git_out, make_repo, user_side, write_file

RUN, TASK = "r1", "t1"
BRANCH = f"magsag/{RUN}/tasks/{TASK}"


@pytest.fixture
def repo(tmp_path: Path):
    """A repository whose user checkout is dirty; checked unchanged after each test."""
    path = make_repo(tmp_path / "repo")
    write_file(path, "README.md", "# user edit in progress\n")
    write_file(path, "notes.txt", "untracked user notes\n")
    before = user_side(path)
    yield path
    assert user_side(path) == before


@pytest.fixture
def wt_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "worktrees" / TASK  # parents do not exist yet


async def create(repo: Path, path: Path, branch: str = BRANCH, base: str = "main"):
    inp = CreateWorktreeInput(
        repo=str(repo), path=str(path), branch=branch, base_commit=git_out(repo, "rev-parse", base)
    )
    return await ActivityEnvironment().run(create_worktree, inp)


async def close(repo: Path, path: Path, mode: str = "checkpoint", message: str = "Add feature"):
    inp = CloseWorktreeInput(
        repo=str(repo),
        path=str(path),
        branch=BRANCH,
        run_id=RUN,
        task=TASK,
        mode=mode,
        message=message,
    )
    return await ActivityEnvironment().run(close_worktree, inp)


def registered(repo: Path) -> list[str]:
    lines = git_out(repo, "worktree", "list", "--porcelain").splitlines()
    return [
        os.path.realpath(line.split(" ", 1)[1]) for line in lines if line.startswith("worktree ")
    ]


def trailers(repo: Path, commit: str) -> str:
    return git_out(repo, "show", "-s", "--format=%(trailers:only,unfold)", commit)


async def test_create_then_reuse_keeps_uncommitted_work(repo: Path, wt_path: Path) -> None:
    base = git_out(repo, "rev-parse", "main")
    first = await create(repo, wt_path)
    assert not first.reused and first.base_commit == base
    assert git_out(wt_path, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
    assert git_out(repo, "rev-parse", BRANCH) == base
    write_file(wt_path, "work.txt", "agent output\n")

    again = await create(repo, wt_path)  # a retry after a crash
    assert again.reused
    assert (wt_path / "work.txt").read_text() == "agent output\n"


async def test_create_recovers_a_worktree_whose_dir_vanished(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    shutil.rmtree(wt_path)
    out = await create(repo, wt_path)
    assert not out.reused
    assert git_out(wt_path, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
    assert registered(repo).count(os.path.realpath(wt_path)) == 1


async def test_create_moves_a_stale_dir_aside(repo: Path, wt_path: Path) -> None:
    write_file(wt_path, "leftover.txt", "not a worktree\n")
    out = await create(repo, wt_path)
    assert not out.reused
    assert (wt_path / "README.md").exists() and not (wt_path / "leftover.txt").exists()
    aside = wt_path.with_name(f"{TASK}.stale-1")
    assert (aside / "leftover.txt").read_text() == "not a worktree\n"


@pytest.mark.parametrize("branch_exists", [False, True])
async def test_a_new_worktree_is_checked_out_outside_the_worktree_lock(
    repo: Path, wt_path: Path, branch_exists: bool
) -> None:
    """Its files are written and the post-checkout hook runs as `git worktree add` runs
    it, with the repository's worktree lock free meanwhile: on a repository of thousands
    of files the checkout takes most of a second, and every other task's claim, park and
    add waited for it (the first wave of a 32-task run on 10,000 files took ~20 s)."""
    log, lock = repo.parent / "hook.log", repo / ".git" / LOCK_NAME
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(
        "#!/bin/sh\n"
        f"if flock -n {lock} true; then lock=free; else lock=held; fi\n"
        f'echo "$lock $* $(test -f README.md && echo with-files)" >> {log}\n'
    )
    hook.chmod(0o755)
    base = git_out(repo, "rev-parse", "main")
    if branch_exists:  # the careful steps of create_worktree, as after a crash
        git_out(repo, "branch", BRANCH, base)

    created = await create(repo, wt_path)

    assert not created.reused
    assert log.read_text() == f"free {'0' * 40} {base} 1 with-files\n"
    assert git_out(wt_path, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
    assert git_out(wt_path, "status", "--porcelain") == ""
    assert not [w for w in await list_worktrees(str(repo)) if w.locked is not None]


async def test_a_new_worktree_runs_the_hook_of_a_relative_hooks_path(
    tmp_path: Path, wt_path: Path
) -> None:
    """core.hooksPath relative to the worktree, hooks kept in the repository (as husky
    sets it up): the new worktree runs its own copy, as `git worktree add` does."""
    repo, log = make_repo(tmp_path / "hooked"), tmp_path / "hook.log"
    git_out(repo, "config", "core.hooksPath", ".githooks")
    hook = write_file(repo, ".githooks/post-checkout", f'#!/bin/sh\necho "$PWD $3" >> {log}\n')
    hook.chmod(0o755)
    git_out(repo, "add", ".githooks")
    git_out(repo, "commit", "-qm", "hooks")

    await create(repo, wt_path)

    assert log.read_text() == f"{os.path.realpath(wt_path)} 1\n"


async def test_create_keeps_an_existing_branch_where_it_is(repo: Path, wt_path: Path) -> None:
    git_out(repo, "branch", BRANCH, "main")
    side = repo.parent / "side"
    git_out(repo, "worktree", "add", "-q", str(side), BRANCH)
    tip = commit_file(side, "earlier.txt", "earlier attempt\n", "earlier work")
    git_out(repo, "worktree", "remove", str(side))

    await create(repo, wt_path)
    assert git_out(repo, "rev-parse", BRANCH) == tip
    assert (wt_path / "earlier.txt").exists()


async def test_create_refuses_a_worktree_on_another_branch(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path, branch="other")
    with pytest.raises(ApplicationError) as err:
        await create(repo, wt_path)
    assert err.value.non_retryable and err.value.type == "GitError"


async def test_create_rejects_unknown_base(repo: Path, wt_path: Path) -> None:
    inp = CreateWorktreeInput(
        repo=str(repo), path=str(wt_path), branch=BRANCH, base_commit="0" * 40
    )
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(create_worktree, inp)
    assert err.value.non_retryable
    assert not wt_path.exists()
    assert not git_out(repo, "branch", "--list", BRANCH)


async def test_close_checkpoint_commits_and_removes(repo: Path, wt_path: Path) -> None:
    base = git_out(repo, "rev-parse", "main")
    await create(repo, wt_path)
    write_file(wt_path, "src/app.py", "print('changed')\n")
    write_file(wt_path, "src/new.py", "x = 1\n")
    write_file(wt_path, "build/out.bin", "ignored\n")
    (wt_path / "README.md").unlink()

    out = await close(repo, wt_path)

    assert out.commit is not None and out.removed
    assert sorted(out.changed_files) == ["README.md", "src/app.py", "src/new.py"]
    assert git_out(repo, "rev-parse", BRANCH) == out.commit
    assert git_out(repo, "rev-parse", f"{out.commit}^") == base
    assert git_out(repo, "show", "-s", "--format=%s", out.commit) == "Add feature"
    assert trailers(repo, out.commit) == f"Magsag-Run: {RUN}\nMagsag-Task: {TASK}"
    assert git_out(repo, "show", "-s", "--format=%ae", out.commit) == "test@example.com"
    assert not wt_path.exists()
    assert os.path.realpath(wt_path) not in registered(repo)


async def test_close_with_nothing_changed_commits_nothing(repo: Path, wt_path: Path) -> None:
    base = git_out(repo, "rev-parse", "main")
    await create(repo, wt_path)
    write_file(wt_path, "build/cache", "ignored only\n")
    out = await close(repo, wt_path)
    assert out.commit is None and out.changed_files == [] and out.removed
    assert git_out(repo, "rev-parse", BRANCH) == base
    assert not wt_path.exists()


async def test_close_wip_keeps_partial_work(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    write_file(wt_path, "half/done.py", "# untracked partial work\n")
    out = await close(repo, wt_path, mode="wip", message="agent was cancelled")
    assert out.commit is not None
    assert git_out(repo, "show", "-s", "--format=%s", out.commit) == "WIP: agent was cancelled"
    assert git_out(repo, "show", f"{out.commit}:half/done.py") == "# untracked partial work"
    assert f"Magsag-Task: {TASK}" in trailers(repo, out.commit)
    assert out.changed_files == ["half/done.py"]
    assert not wt_path.exists()


async def test_close_retried_after_removal_is_idempotent(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    write_file(wt_path, "feature.txt", "done\n")
    first = await close(repo, wt_path)
    second = await close(repo, wt_path)
    assert second.commit == first.commit and second.removed
    assert second.changed_files == ["feature.txt"]
    assert git_out(repo, "rev-list", "--count", f"main..{BRANCH}") == "1"


async def test_close_retried_after_commit_does_not_commit_again(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    # What a first attempt that died between its commit and the removal leaves behind.
    write_file(wt_path, "feature.txt", "done\n")
    git_out(wt_path, "add", "-A")
    git_out(wt_path, "commit", "-q", "-m", f"Add\n\nMagsag-Run: {RUN}\nMagsag-Task: {TASK}")
    earlier = git_out(wt_path, "rev-parse", "HEAD")

    out = await close(repo, wt_path)
    assert out.commit == earlier and out.changed_files == ["feature.txt"]
    assert git_out(repo, "rev-parse", BRANCH) == earlier
    assert not wt_path.exists()


async def test_close_on_a_foreign_clean_commit_reports_none(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    commit_file(wt_path, "by-hand.txt", "x\n", "a commit without our trailers")
    out = await close(repo, wt_path)
    assert out.commit is None and out.removed


async def test_failed_commit_leaves_the_worktree(repo: Path, wt_path: Path) -> None:
    await create(repo, wt_path)
    write_file(wt_path, "precious.txt", "uncommitted work\n")
    lock = repo / ".git" / "refs" / "heads" / f"{BRANCH}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()  # the branch cannot move: the commit step fails

    with pytest.raises(ApplicationError) as err:
        await close(repo, wt_path)
    assert not err.value.non_retryable
    assert (wt_path / "precious.txt").read_text() == "uncommitted work\n"

    lock.unlink()  # the retry converges
    out = await close(repo, wt_path)
    assert out.changed_files == ["precious.txt"] and not wt_path.exists()


async def test_fallback_identity_only_without_one(
    repo: Path, wt_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git_out(repo, "config", "--unset", "user.name")
    git_out(repo, "config", "--unset", "user.email")

    await create(repo, wt_path)
    write_file(wt_path, "feature.txt", "done\n")
    out = await close(repo, wt_path)
    assert git_out(repo, "show", "-s", "--format=%an <%ae>", out.commit) == (
        "magsag <magsag@localhost>"
    )


async def test_parallel_tasks_each_get_and_close_their_worktree(repo: Path, tmp_path: Path) -> None:
    env = ActivityEnvironment()
    base = git_out(repo, "rev-parse", "main")
    tasks = [f"t{i}" for i in range(6)]
    common = {"repo": str(repo), "run_id": RUN, "mode": "checkpoint", "message": "task"}

    def where(t: str) -> dict[str, str]:
        return {"path": str(tmp_path / "state" / t), "branch": f"magsag/{RUN}/tasks/{t}"}

    creates = [CreateWorktreeInput(repo=str(repo), base_commit=base, **where(t)) for t in tasks]
    await asyncio.gather(*(env.run(create_worktree, inp) for inp in creates))
    for t in tasks:
        write_file(where(t)["path"], f"{t}.txt", t)
    closes = [CloseWorktreeInput(task=t, **common, **where(t)) for t in tasks]
    outs = await asyncio.gather(*(env.run(close_worktree, inp) for inp in closes))

    assert [o.changed_files for o in outs] == [[f"{t}.txt"] for t in tasks]
    assert registered(repo) == [os.path.realpath(repo)]


def _git_listing(repo: Path) -> list[tuple]:
    """What `git worktree list --porcelain` says: (path, branch, prunable, lock reason)."""
    records = git_out(repo, "worktree", "list", "--porcelain", "-z").split("\0\0")
    found = []
    for record in filter(None, records):
        fields = dict(f"{line} ".split(" ", 1) for line in record.split("\0"))
        branch, locked = fields.get("branch"), fields.get("locked")
        found.append(
            (
                fields["worktree"].strip(),
                branch.strip() if branch else None,
                "prunable" in fields,
                None if locked is None else locked.strip(),
            )
        )
    return found


async def test_worktrees_are_read_from_gits_files_as_git_lists_them(repo: Path, tmp_path: Path):
    # No `git worktree list` per task (a process, under the worktree lock): the files it
    # reads are read directly, and must say the same.
    def add(name: str, *args: str) -> Path:
        git_out(repo, "worktree", "add", "-q", *args, str(tmp_path / name))
        return tmp_path / name

    add("on-branch", "-b", "feature")
    add("detached", "--detach")
    git_out(repo, "worktree", "lock", "--reason", "busy", str(add("locked", "--detach")))
    git_out(repo, "worktree", "lock", str(add("locked-plain", "--detach")))
    shutil.rmtree(add("gone", "--detach"))
    (add("unlinked", "--detach") / ".git").unlink()

    listed = [(w.path, w.branch, w.prunable, w.locked) for w in await list_worktrees(str(repo))]
    assert listed == _git_listing(repo)
    assert [w[2] for w in listed].count(True) == 2
