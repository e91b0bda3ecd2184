"""`magsag gc` cleans after runs that are over and never touches a running one."""

import json
import os
import signal
import subprocess

from magsag.worker.devserver import temporal_binary
from tests.support.cli import magsag, magsag_json
from tests.support.gitrepo import FILE_PROTOCOL, git_out, make_repo, with_submodule, write_file
from tests.support.poll import wait_for
from tests.support.processes import pid_alive
from tests.support.runs import bash_plan_file, worktrees_left


def _plan(tmp_path, name, marks):
    script = f"echo partial > partial.txt; sleep 300 & echo $! > {marks}/{name}; wait"
    tasks = [{"name": "work", "prompt": script}]
    return bash_plan_file(tmp_path, tasks, filename=f"{name}.json", name=name)


def test_gc_saves_and_removes_what_ended_runs_left_and_keeps_running_ones(
    procs, cli_env, repo, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    worker = procs.start("worker", name="worker")
    ended = magsag_json("run", _plan(tmp_path, "ended", marks), "--repo", repo, "--detach",
                        env=cli_env)["run_id"]  # fmt: skip
    alive = magsag_json("run", _plan(tmp_path, "alive", marks), "--repo", repo, "--detach",
                        env=cli_env)["run_id"]  # fmt: skip
    wait_for(lambda: (marks / "ended").exists() and (marks / "alive").exists(), timeout=60,
             what="both agents")  # fmt: skip
    procs.kill_hard(worker)  # both agents are orphans now, their worktrees stay
    subprocess.run(
        [temporal_binary(), "workflow", "terminate", "--address", cli_env["TEMPORAL_ADDRESS"],
         "-w", f"magsag-{ended}", "--reason", "test"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert len(worktrees_left(repo)) == 2

    dry = magsag("gc", "--dry-run", "--json", env=cli_env)
    assert dry.returncode == 0, dry.stderr
    planned = {a["run_id"]: a["action"] for a in json.loads(dry.stdout)}
    assert planned == {ended: "would save and remove", alive: "kept (run is running)"}
    assert len(worktrees_left(repo)) == 2

    done = magsag_json("gc", env=cli_env)
    by_run = {a["run_id"]: a for a in done}
    assert by_run[ended]["action"] == "saved and removed"
    assert by_run[alive]["action"] == "kept (run is running)"
    # The ended run's agent is dead, its work saved on its branch, its worktree gone.
    assert not pid_alive(int((marks / "ended").read_text()))
    branch = f"magsag/{ended}/tasks/work"
    assert git_out(repo, "show", f"{branch}:partial.txt") == "partial"
    assert by_run[ended]["commit"] == git_out(repo, "rev-parse", branch)
    # The running run is untouched: its agent still runs in its worktree.
    survivor = int((marks / "alive").read_text())
    try:
        assert pid_alive(survivor)
        assert [p.rsplit("/", 2)[-2] for p in worktrees_left(repo)] == [alive]
    finally:
        os.killpg(os.getpgid(survivor), signal.SIGKILL)


def test_gc_with_nothing_left_says_so(cli_env):
    done = magsag("gc", env=cli_env)
    assert done.returncode == 0 and "nothing to clean up" in done.stderr


def test_gc_saves_and_removes_a_worktree_with_submodules(cli_env, tmp_path):
    library = make_repo(tmp_path / "library", {"lib.txt": "lib\n"})
    repo = with_submodule(make_repo(tmp_path / "repo"), library)
    left = tmp_path / "root" / "gone-run" / "work"  # a task of a run the server forgot
    git_out(repo, "worktree", "add", "-q", "-b", "magsag/gone-run/tasks/work", str(left))
    git_out(left, *FILE_PROTOCOL, "submodule", "update", "--init", "-q")
    write_file(left, "sub/c.txt", "inside the submodule\n")
    write_file(left, "top.txt", "top\n")

    done = magsag("gc", "--repo", repo, "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    [action] = json.loads(done.stdout)
    assert (action["run"], action["action"]) == ("gone", "saved and removed")
    assert git_out(repo, "show", "magsag/gone-run/tasks/work:top.txt") == "top"
    saved = "magsag/gone-run/submodules/work/sub"
    assert git_out(repo, "show", f"{saved}:c.txt") == "inside the submodule"
    assert worktrees_left(repo) == [] and not left.exists()
