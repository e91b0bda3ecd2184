"""A SIGKILLed embedded server, restarted on the same database, finishes the run."""

import json
import os
import signal
import time

from tests.support.cli import magsag, magsag_json
from tests.support.net import answers, free_port
from tests.support.poll import wait_for
from tests.support.runs import bash_plan_file, worktrees_left


def _status_when_up(run_id: str, env: dict) -> dict | None:
    """The run's status, or None while the restarted server is not answering yet."""
    done = magsag("status", run_id, "--json", env=env)
    return json.loads(done.stdout) if done.returncode == 0 else None


def test_a_killed_server_restarted_on_its_database_completes_the_run(
    procs, cli_env, repo, tmp_path
):
    port, ui_port = free_port(), free_port()
    db = tmp_path / "server" / "temporal.db"
    procs.env = {**cli_env, "TEMPORAL_ADDRESS": f"localhost:{port}"}
    server_args = ("server", "--port", str(port), "--ui-port", str(ui_port), "--db", str(db))
    server = procs.start(*server_args, name="server-1")
    wait_for(lambda: answers(port), timeout=60, what="the server")
    procs.start("worker", name="worker")
    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = [
        {"name": f"t{i}", "prompt": f"sleep 1; echo {i} > t{i}.txt; echo ok >> {marks}/t{i}",
         **({"depends_on": [f"t{i - 1}"]} if i else {})}
        for i in range(4)
    ]  # fmt: skip
    plan = bash_plan_file(tmp_path, tasks)
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=procs.env)["run_id"]
    wait_for(lambda: (marks / "t1").exists(), timeout=60, what="the run to be under way")

    os.killpg(server.pid, signal.SIGKILL)  # magsag server and its temporal process, hard
    server.wait(timeout=10)
    wait_for(lambda: not answers(port), timeout=10, what="the server to be gone")
    time.sleep(2)  # the run stays down a while: workers and agents must ride it out
    procs.start(*server_args, name="server-2")
    final = wait_for(
        lambda: (s := _status_when_up(run_id, procs.env)) and s["status"] != "running" and s,
        timeout=120,
        what="the run to finish after the restart",
    )
    assert final["status"] == "succeeded", final
    assert {t["status"] for t in final["tasks"].values()} == {"succeeded"}
    assert worktrees_left(repo) == []
