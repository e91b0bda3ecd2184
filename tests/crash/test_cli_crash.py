"""The `magsag run` that started a run (and hosted its worker) dies; `watch` picks it up."""

import json
import re

from tests.support.cli import magsag, magsag_json
from tests.support.poll import wait_for
from tests.support.runs import bash_plan_file, worktrees_left


def test_a_killed_run_command_is_picked_up_by_status_and_watch(procs, cli_env, repo, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    plan = bash_plan_file(tmp_path, [
        {"name": "first", "prompt": f"touch {marks}/first; sleep 2; echo 1 > one.txt"},
        {"name": "second", "prompt": "cat one.txt > two.txt", "depends_on": ["first"]},
    ])  # fmt: skip
    cli = procs.start("run", str(plan), "--repo", str(repo), name="run-cli")
    log = tmp_path / "run-cli.log"
    started = wait_for(lambda: re.search(r"run (\S+) started", log.read_text()), timeout=60,
                       what="the run to start")  # fmt: skip
    run_id = started.group(1)
    wait_for(lambda: (marks / "first").exists(), timeout=60, what="the first agent")
    procs.kill_hard(cli)  # the CLI and the worker it hosted die mid-agent

    assert magsag_json("status", run_id, env=cli_env)["status"] == "running"
    watched = magsag("watch", run_id, "--json", env=cli_env, timeout=120)
    assert watched.returncode == 0, watched.stderr
    assert "running one in this process" in watched.stderr
    result = json.loads(watched.stdout)
    assert result["status"] == "succeeded"
    assert {t["status"] for t in result["tasks"].values()} == {"succeeded"}
    assert worktrees_left(repo) == []
