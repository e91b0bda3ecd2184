"""A worker killed while a resolver works on a task's conflict (on_conflict): another
worker runs the same resolver attempt again, the first one's process is gone, and the
resolution is merged with nothing lost (invariants 2, 4 and 8 for the resolve step)."""

import time

from tests.support.cli import magsag, magsag_json
from tests.support.gitrepo import git_out
from tests.support.poll import wait_for
from tests.support.processes import pid_alive
from tests.support.runs import BASH_RUNNERS, bash_plan_file, worktrees_left


def test_a_worker_killed_mid_resolve_is_replaced_and_the_conflict_resolved(
    procs, cli_env, repo, tmp_path
):
    marks = tmp_path / "marks"
    marks.mkdir()
    resolver = (
        f'echo "$MAGSAG_ATTEMPT $$" >> {marks}/resolver.runs; echo "resolving $$"; '
        f"if [ ! -e {marks}/sleeper ]; then sleep 300 & echo $! > {marks}/sleeper; wait; fi; "
        "printf 'left\\nright\\n' > README.md"
    )
    tasks = [
        {"name": "left", "prompt": "echo left > README.md"},
        {"name": "right", "prompt": "sleep 1; echo right > README.md"},
    ]
    runners = {**BASH_RUNNERS, "resolver": {"command": ["bash", "-c", resolver]}}
    on_conflict = {"runner": "resolver"}
    plan = bash_plan_file(
        tmp_path, tasks, runners=runners, defaults={"runner": "sh"}, on_conflict=on_conflict
    )
    first = procs.start("worker", name="worker-1")
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    wait_for(lambda: (marks / "sleeper").exists(), timeout=60, what="the resolver to start")
    status = magsag_json("status", run_id, env=cli_env)
    assert status["tasks"]["right"]["status"] == "running"
    assert status["tasks"]["right"]["resolving"] is True
    orphan = int((marks / "sleeper").read_text())

    procs.kill_hard(first)
    killed_at = time.monotonic()
    procs.start("worker", name="worker-2")
    final = wait_for(
        lambda: (s := magsag_json("status", run_id, env=cli_env))["status"] != "running" and s,
        timeout=90,
        what="the run to finish on the new worker",
    )
    print(f"recovery after a worker kill mid-resolve: {time.monotonic() - killed_at:.1f}s")

    assert final["status"] == "succeeded", final
    right = final["tasks"]["right"]
    assert right["status"] == "succeeded" and right["resolved_conflict"] is True
    assert not pid_alive(orphan)
    runs = (marks / "resolver.runs").read_text().split("\n")
    assert [line.split()[0] for line in runs if line] == ["1", "1"]  # same attempt, again
    integration = f"magsag/{run_id}/integration"
    assert git_out(repo, "show", f"{integration}:README.md") == "left\nright"
    parents = git_out(repo, "rev-list", "--parents", "-n1", integration).split()[1:]
    assert parents == [final["tasks"]["left"]["commit"], right["commit"]]
    assert worktrees_left(repo) == []
    # Its output, both runs of the attempt, under the task's name with --resolve.
    shown = magsag("logs", run_id, "right--resolve", env=cli_env)
    assert shown.returncode == 0 and shown.stdout.count("resolving") == 2, shown.stderr
