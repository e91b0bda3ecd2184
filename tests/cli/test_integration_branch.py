"""The user and the run's integration branch: deleted mid-run, or checked out mid-run."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import MAGSAG, magsag, magsag_json
from tests.support.gitrepo import git_out
from tests.support.poll import eventually, wait_for
from tests.support.runs import bash_plan_file
from tests.workflows.test_run_errors import replays


@pytest.fixture
def marks(tmp_path) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    return path


def held(marks: Path, name: str, then: str) -> str:
    """A prompt that says it started, waits for the test's go, then does `then`."""
    return f"touch {marks}/{name}; until [ -e {marks}/go-{name} ]; do sleep 0.1; done; {then}"


class RunCommand:
    """`magsag run --json` in the background, as a user's terminal would hold it."""

    def __init__(self, plan: Path, repo: Path, env: dict, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [MAGSAG, "run", str(plan), "--repo", str(repo), "--json"],
            env=env, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True,
        )  # fmt: skip
        found = wait_for(lambda: re.search(r"run (\S+) started", log.read_text()), timeout=60,
                         what="the run to start")  # fmt: skip
        self.run_id = found.group(1)
        self.branch = f"magsag/{self.run_id}/integration"

    def result(self) -> tuple[int, dict]:
        out, _ = self.proc.communicate(timeout=120)
        return self.proc.returncode, json.loads(out)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def run_command(repo, cli_env, tmp_path):
    started: list[RunCommand] = []

    def start(plan: Path) -> RunCommand:
        started.append(RunCommand(plan, repo, cli_env, tmp_path / f"run-{len(started)}.log"))
        return started[-1]

    yield start
    for command in started:
        command.stop()


async def test_a_deleted_integration_branch_ends_the_run_with_the_reason(
    tmp_path, repo, marks, run_command, client, cli_env
):
    plan = bash_plan_file(tmp_path, [
        {"name": "done", "prompt": held(marks, "done", "echo d > d.txt")},
        {"name": "busy", "prompt": held(marks, "busy", "echo b > b.txt")},
        {"name": "after", "prompt": "cat d.txt", "depends_on": ["done"]},
    ])  # fmt: skip
    run = run_command(plan)
    wait_for(lambda: (marks / "done").exists() and (marks / "busy").exists(), timeout=60,
             what="both agents to start")  # fmt: skip
    base = git_out(repo, "rev-parse", run.branch)
    git_out(repo, "branch", "-D", run.branch)  # the user deletes it mid-run
    (marks / "go-done").touch()  # a task finishes and its merge finds no branch

    code, result = run.result()
    assert code == 1
    assert result["status"] == "failed"
    assert result["error"].startswith(
        f"integration branch {run.branch} was deleted from {repo} while the run went on; "
        f"restore it with `git branch {run.branch} {base}`, then `magsag resume {run.run_id}`"
    )
    tasks = result["tasks"]
    assert tasks["done"]["status"] == "failed"
    assert tasks["done"]["error"].startswith(f"not merged: integration branch {run.branch} was")
    assert tasks["busy"]["status"] == "cancelled"  # nothing more could be merged
    assert tasks["after"]["status"] == "skipped"
    assert f"not merged: integration branch {run.branch} was deleted" in run.log.read_text()
    shown = magsag("status", run.run_id, env=cli_env).stdout
    assert f"run {run.run_id} failed: 1 cancelled, 1 failed, 1 skipped" in shown
    assert f"error: integration branch {run.branch} was deleted" in shown
    described = magsag("runs", "describe", run.run_id, env=cli_env)
    assert described.returncode == 0, described.stderr
    assert f"error: integration branch {run.branch} was deleted" in described.stdout
    # The work stays on the task's branch.
    assert git_out(repo, "show", f"magsag/{run.run_id}/tasks/done:d.txt") == "d"

    handle = client.get_workflow_handle(f"magsag-{run.run_id}")
    attributes = {
        key.name: value for key, value in (await handle.describe()).typed_search_attributes
    }
    assert attributes["MagsagRunStatus"] == "failed"
    assert attributes["MagsagTasksDone"] == 3 and attributes["MagsagTasksFailed"] == 1
    await replays(await handle.fetch_history())


async def test_a_checked_out_integration_branch_is_not_moved_under_the_user(
    tmp_path, repo, marks, run_command, cli_env
):
    plan = bash_plan_file(tmp_path, [
        {"name": "first", "prompt": held(marks, "first", "echo 1 > one.txt")},
        {"name": "second", "prompt": "cat one.txt > two.txt", "depends_on": ["first"]},
    ])  # fmt: skip
    run = run_command(plan)
    wait_for(lambda: (marks / "first").exists(), timeout=60, what="the agent to start")
    git_out(repo, "checkout", "-q", run.branch)  # the user looks at the run's work
    tip = git_out(repo, "rev-parse", run.branch)
    (marks / "go-first").touch()

    def waiting():
        status = magsag_json("status", run.run_id, env=cli_env)
        return status.get("waiting_on") and status

    status = await eventually(waiting, timeout=60, what="the run to wait for the checkout")
    assert status["waiting_on"] == (
        f"integration branch {run.branch} is checked out in {repo}; check out another branch "
        "there to let the run go on"
    )
    assert status["tasks"]["first"]["status"] == "running"  # merging
    # The command shows it at its next look at the run.
    shown = f"⏸ waiting: integration branch {run.branch} is checked out"
    await eventually(lambda: shown in run.log.read_text(), timeout=30, what="`run` to show it")
    # Nothing moved under the user: their branch, its tip, a clean tree.
    assert git_out(repo, "symbolic-ref", "HEAD") == f"refs/heads/{run.branch}"
    assert git_out(repo, "rev-parse", run.branch) == tip
    assert git_out(repo, "status", "--porcelain", "--untracked-files=all") == ""

    git_out(repo, "checkout", "-q", "main")  # the user lets it go on
    code, result = run.result()
    assert code == 0 and result["status"] == "succeeded"
    assert "waiting_on" not in result or result["waiting_on"] is None
    assert git_out(repo, "show", f"{run.branch}:two.txt") == "1"
    assert git_out(repo, "status", "--porcelain", "--untracked-files=all") == ""
