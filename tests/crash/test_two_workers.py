"""Two workers on one host, two runs on one repository at once: no collision.

Both workers poll the same host queue, so each run's worktree commands come from both
processes at once; git 2.39 fails concurrent worktree commands on one repository unless
they wait for each other (activities/repo_lock.py). Every task must succeed on its first
try, with no activity retried.
"""

import json

from tests.support.cli import magsag
from tests.support.poll import eventually
from tests.support.runs import bash_plan_file, retried_activities, worktrees_left

TASKS = [{"name": f"t{i}", "prompt": f"echo {i} > t{i}.txt"} for i in range(12)]


async def test_two_workers_running_two_runs_on_one_repository_never_collide(
    client, procs, cli_env, repo, tmp_path
):
    procs.start("worker", name="worker-1")
    procs.start("worker", name="worker-2")
    runs = []
    for name in ("one", "two"):
        plan = bash_plan_file(tmp_path, TASKS, filename=f"{name}.json", concurrency=12)
        started = magsag("run", plan, "--repo", repo, "--detach", "--json", env=cli_env)
        assert started.returncode == 0, started.stderr
        runs.append(json.loads(started.stdout)["run_id"])

    async def finished():
        results = []
        for run_id in runs:
            shown = magsag("status", run_id, "--json", env=cli_env)
            results.append(json.loads(shown.stdout))
        return all(r["status"] != "running" for r in results) and results

    for result in await eventually(finished, timeout=120, interval=0.5, what="both runs"):
        assert result["status"] == "succeeded", result
        assert await retried_activities(client, result["run_id"], list(result["tasks"])) == []
    assert worktrees_left(repo) == []
