"""Integration on a remote URL: the integration branch moves only by fast-forward pushes,
so two hosts integrating at once never lose a merge (compare-and-swap, then fetch and
merge again)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from magsag.activities import remote_runs
from magsag.activities.integration import integrate, prepare_integration
from magsag.contracts.activities import (
    IntegrateInput,
    IntegrateItem,
    IntegrateOutput,
    PrepareIntegrationInput,
)
from tests.support.gitdaemon import bare_remote, refs
from tests.support.gitrepo import commit_file, git_out

RUN = "r1"
INTEGRATION = f"magsag/{RUN}/integration"


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, Path, Path]:
    """(file:// URL, the bare remote, a clone that pushes task branches to it)."""
    bare = bare_remote(tmp_path / "served")
    pusher = tmp_path / "pusher"
    git_out(tmp_path, "clone", "-q", str(bare), str(pusher))
    git_out(pusher, "config", "user.name", "T")
    git_out(pusher, "config", "user.email", "t@example.com")
    return f"file://{bare}", bare, pusher


def push_task(pusher: Path, task: str) -> str:
    """A task's checkpoint, made on main and pushed to its branch on the remote."""
    git_out(pusher, "checkout", "-q", "-B", f"work-{task}", "origin/main")
    commit = commit_file(pusher, f"{task}.txt", f"{task}\n", f"task {task}")
    git_out(pusher, "push", "-q", "origin", f"{commit}:refs/heads/magsag/{RUN}/tasks/{task}")
    return commit


def batch(url: str, *items: tuple[str, str]) -> IntegrateInput:
    return IntegrateInput(
        repo=url, branch=INTEGRATION, run_id=RUN,
        items=[IntegrateItem(task=task, commit=commit) for task, commit in items],
    )  # fmt: skip


async def test_two_hosts_integrating_at_once_never_lose_a_merge(remote, tmp_path, monkeypatch):
    url, bare, pusher = remote
    base = git_out(bare, "rev-parse", "main")
    monkeypatch.setenv("MAGSAG_STATE_DIR", str(tmp_path / "host-a"))
    prepared = await ActivityEnvironment().run(
        prepare_integration,
        PrepareIntegrationInput(repo=url, base=base, base_branch="main", branch=INTEGRATION),
    )
    assert prepared.created and refs(bare)[f"refs/heads/{INTEGRATION}"] == base
    a, b = push_task(pusher, "a"), push_task(pusher, "b")

    # Host A has fetched the tip and is about to merge when host B, integrating another
    # batch, pushes first: A's push is refused, and A merges again onto B's tip.
    calls = []

    async def host_a_merges(inp: IntegrateInput) -> IntegrateOutput:
        if not calls:
            with monkeypatch.context() as host_b:
                host_b.setenv("MAGSAG_STATE_DIR", str(tmp_path / "host-b"))
                out_b = await integrate(batch(url, ("b", b)))
            assert out_b.outcomes[0].merged
        calls.append(inp)
        return await integrate(inp)

    env = ActivityEnvironment()
    out = await env.run(remote_runs.integrate, batch(url, ("a", a)), host_a_merges)

    assert len(calls) == 2  # merged, refused, merged again
    assert [o.merged for o in out.outcomes] == [True]
    tip = refs(bare)[f"refs/heads/{INTEGRATION}"]
    assert tip == out.tip
    history = git_out(bare, "rev-list", tip).split()
    assert a in history and b in history  # neither merge lost
    assert git_out(bare, "rev-list", "--count", f"{base}..{tip}", "--first-parent") == "2"
