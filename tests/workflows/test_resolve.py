"""Conflicts handed to an agent (plan `on_conflict:`): two parallel tasks change the same
lines; a scripted resolver (a `command` runner) merges them, or fails to."""

import json
from pathlib import Path

from magsag.contracts import constants as C
from magsag.contracts import run_files
from magsag.contracts.run import RunStatus, TaskStatus
from magsag.history.describe import describe_run
from tests.support.gitrepo import git_out
from tests.support.runs import BASH_RUNNERS, bash_plan, run_plan, worktrees_left

# `right` sleeps so that `left` is merged first and `right` is the one that conflicts.
RIVALS = [
    {"name": "left", "prompt": "echo left > README.md"},
    {"name": "right", "prompt": "sleep 1; echo right > README.md"},
]


def _resolver_plan(script: str, retries: int = 0, **plan):
    runners = {**BASH_RUNNERS, "resolver": {"command": ["bash", "-c", script]}}
    on_conflict = {"runner": "resolver", "prompt": "Keep both lines.", "retries": retries}
    defaults = {"runner": "sh"}
    return bash_plan(RIVALS, runners=runners, defaults=defaults, on_conflict=on_conflict, **plan)


def _dump(tmp_path: Path) -> str:
    """Shell that saves the resolver's prompt, one file per attempt."""
    return f'printf "%s" "$MAGSAG_PROMPT" > {tmp_path}/prompt-$MAGSAG_ATTEMPT.txt; '


async def _described(client, inp, result):
    """The task `right` as `runs describe` shows it: its resolver attempts, its timeline."""
    handle = client.get_workflow_handle(C.plan_workflow_id(inp.run_id))
    view = (await describe_run(client, handle, result, closed=True)).tasks["right"]
    return view, [entry.event for entry in view.timeline]


def _events(inp, kind: str) -> list[dict]:
    lines = run_files.run_log(inp.paths.log_dir).read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


async def test_a_resolver_merges_both_sides(client, worker, repo, tmp_path):
    script = _dump(tmp_path) + "printf 'left\\nright\\n' > README.md"
    inp, result = await run_plan(client, _resolver_plan(script), repo, tmp_path, worker)

    assert result.status == RunStatus.SUCCEEDED, result.tasks
    left, right = result.tasks["left"], result.tasks["right"]
    assert (left.status, left.resolved_conflict) == (TaskStatus.SUCCEEDED, False)
    assert (right.status, right.resolved_conflict) == (TaskStatus.SUCCEEDED, True)
    assert right.conflict_files == ["README.md"] and right.error is None
    # The integration branch ends at the merge of the tip (left merged) and right's commit.
    tip = result.integration_commit
    merge, first, second = git_out(repo, "rev-list", "--parents", "-n1", tip).split()
    assert (merge, first, second) == (tip, left.commit, right.commit)  # left fast-forwarded
    assert git_out(repo, "log", "-1", "--format=%s", tip) == "magsag: resolve the conflict of right"
    assert git_out(repo, "show", f"{tip}:README.md") == "left\nright"
    # The resolver was told which file, both tasks' intents and the user's instructions.
    prompt = (tmp_path / "prompt-1.txt").read_text()
    assert "- README.md" in prompt
    assert "echo right > README.md" in prompt and "echo left > README.md" in prompt
    assert "Task `left` (already merged" in prompt and "Keep both lines." in prompt
    assert [e["files"] for e in _events(inp, "resolve_started")] == [["README.md"]]
    assert [e["commit"] for e in _events(inp, "resolved")] == [tip]
    assert worktrees_left(repo) == []
    view, timeline = await _described(client, inp, result)
    assert [(a.attempt, a.outcome, a.commit) for a in view.resolves] == [(1, "succeeded", tip)]
    assert timeline[-4:] == ["conflict", "resolve_started", "resolved", "merged"]


async def test_a_failing_resolver_leaves_the_task_conflicted_and_its_work_kept(
    client, worker, repo, tmp_path
):
    # It adds a line but leaves the markers: not accepted, twice.
    script = _dump(tmp_path) + "echo partial >> README.md"
    plan = _resolver_plan(script, retries=1)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    right = result.tasks["right"]
    assert result.status == RunStatus.FAILED
    assert right.status == TaskStatus.CONFLICTED and not right.resolved_conflict
    assert "the resolver failed after 2 attempt(s)" in right.error
    assert "conflict markers are left in README.md" in right.error
    # The task's work stays on its branch; the resolver's on a branch of its own.
    assert git_out(repo, "rev-parse", C.task_branch(inp.run_id, "right")) == right.commit
    wip = C.task_branch(inp.run_id, "right--resolve")
    assert git_out(repo, "log", "-1", "--format=%s", wip).startswith("WIP: ")
    saved = git_out(repo, "show", f"{wip}:README.md")
    assert "<<<<<<<" in saved and "partial" in saved
    assert git_out(repo, "rev-parse", f"{wip}^2") == right.commit  # both sides kept
    # The second attempt was told why the first was not accepted.
    assert "conflict markers are left in README.md" in (tmp_path / "prompt-2.txt").read_text()
    assert [e["attempt"] for e in _events(inp, "resolve_failed")] == [1, 2]
    tip = result.integration_commit
    assert git_out(repo, "show", f"{tip}:README.md") == "left"
    assert worktrees_left(repo) == []
    view, timeline = await _described(client, inp, result)
    assert [(a.attempt, a.outcome) for a in view.resolves] == [(1, "failed"), (2, "failed")]
    assert view.resolve_wip.commit == git_out(repo, "rev-parse", wip)
    assert "conflict" in timeline and timeline[-1] == "resolve_wip_saved"
