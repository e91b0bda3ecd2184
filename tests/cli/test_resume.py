"""`magsag resume`: only what did not succeed runs again, on the old integration branch."""

import json
from pathlib import Path

import pytest

from tests.support.cli import magsag, magsag_json
from tests.support.gitrepo import git_out
from tests.support.poll import wait_for
from tests.support.runs import bash_plan_file


@pytest.fixture
def flaky_plan(tmp_path) -> tuple[Path, Path]:
    """a and d always work; b works once `fixed` exists; c needs b. Runs are counted."""
    marks = tmp_path / "marks"
    marks.mkdir()

    def counted(name: str, body: str) -> str:
        return f"echo x >> {marks}/{name}; {body}"

    tasks = [
        {"name": "a", "prompt": counted("a", "echo a > a.txt")},
        {"name": "b", "prompt": counted("b", f"test -e {marks}/fixed && echo b > b.txt"),
         "depends_on": ["a"]},
        {"name": "c", "prompt": counted("c", "cat a.txt b.txt > c.txt"), "depends_on": ["b"]},
        {"name": "d", "prompt": counted("d", "echo d > d.txt")},
    ]  # fmt: skip
    return bash_plan_file(tmp_path, tasks), marks


def runs_of(marks: Path, name: str) -> int:
    path = marks / name
    return len(path.read_text().split()) if path.exists() else 0


def test_resume_runs_only_what_did_not_succeed(flaky_plan, repo, cli_env):
    plan, marks = flaky_plan
    failed = magsag_json("run", plan, "--repo", repo, env=cli_env)
    assert failed["status"] == "failed"
    assert {n: t["status"] for n, t in failed["tasks"].items()} == {
        "a": "succeeded", "b": "failed", "c": "skipped", "d": "succeeded"
    }  # fmt: skip
    (marks / "fixed").touch()

    done = magsag("resume", failed["run_id"], "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert resumed["run_id"] != failed["run_id"]
    assert resumed["resumed_from"] == failed["run_id"]
    assert {t["status"] for t in resumed["tasks"].values()} == {"succeeded"}
    assert [runs_of(marks, n) for n in "abcd"] == [1, 2, 1, 1]  # a and d were not redone
    # The kept work came with the old integration branch.
    assert resumed["tasks"]["a"]["commit"] == failed["tasks"]["a"]["commit"]
    tip = resumed["integration_branch"]
    files = set(git_out(repo, "ls-tree", "-r", "--name-only", tip).splitlines())
    assert {"a.txt", "b.txt", "c.txt", "d.txt"} <= files
    git_out(repo, "merge-base", "--is-ancestor", failed["integration_commit"], tip)
    # The runs name each other in status, whichever one a user looks at.
    status = magsag("status", resumed["run_id"], env=cli_env)
    assert f"resumed from run {failed['run_id']}" in status.stdout
    old_status = wait_for(  # visibility, which finds the later run, lags a moment
        lambda: (s := magsag_json("status", failed["run_id"], env=cli_env))["resumed_as"] and s,
        timeout=30,
        what="the old run to list the new one",
    )
    assert old_status["resumed_as"] == [resumed["run_id"]]


def test_resume_of_one_task_runs_it_and_its_dependents_only(flaky_plan, repo, cli_env):
    plan, marks = flaky_plan
    (marks / "fixed").touch()
    first = magsag_json("run", plan, "--repo", repo, env=cli_env)
    assert first["status"] == "succeeded"
    again = magsag_json("resume", first["run_id"], "--task", "b", env=cli_env)
    assert again["status"] == "succeeded"
    assert [runs_of(marks, n) for n in "abcd"] == [1, 2, 2, 1]


def test_resume_refuses_a_succeeded_run_and_unknown_ones(flaky_plan, repo, cli_env):
    plan, marks = flaky_plan
    (marks / "fixed").touch()
    run_id = magsag_json("run", plan, "--repo", repo, env=cli_env)["run_id"]
    done = magsag("resume", run_id, env=cli_env)
    assert done.returncode == 2 and "succeeded; nothing to resume" in done.stderr
    done = magsag("resume", run_id, "--task", "zzz", env=cli_env)
    assert done.returncode == 2 and "--task zzz: no such task" in done.stderr
    done = magsag("resume", "no-such-run", env=cli_env)
    assert done.returncode == 2 and "unknown run id" in done.stderr


def test_resume_refuses_a_running_run(flaky_plan, repo, cli_env):
    plan, _ = flaky_plan
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    done = magsag("resume", run_id, env=cli_env)  # no worker: it is still running
    assert done.returncode == 2 and "is still running" in done.stderr
    cancelled = magsag("cancel", run_id, env=cli_env)
    assert cancelled.returncode == 0, cancelled.stderr
