"""A daemon an agent started outside its process group dies with the attempt even when the
worker itself is SIGKILLed: the next attempt, or `magsag gc`, finds it by the attempt's
marker recorded in the pidfile."""

import subprocess

from magsag.worker.devserver import temporal_binary
from tests.support.cli import magsag_json
from tests.support.poll import wait_for
from tests.support.processes import daemon, processes_named, unique_name
from tests.support.runs import bash_plan_file, worktrees_left


def _plan(tmp_path, prompt: str):
    return bash_plan_file(tmp_path, [{"name": "work", "prompt": prompt}], name="escaped")


def test_the_next_attempt_kills_the_daemon_of_an_attempt_whose_worker_died(
    procs, cli_env, repo, tmp_path
):
    name, first_run = unique_name(), tmp_path / "first-run"
    prompt = (
        f"if [ ! -e {first_run} ]; then touch {first_run}; {daemon(name, tmp_path)}; sleep 300;"
        " fi; echo done > done.txt"
    )
    worker = procs.start("worker", name="worker-1")
    run_id = magsag_json("run", _plan(tmp_path, prompt), "--repo", repo, "--detach",
                         env=cli_env)["run_id"]  # fmt: skip
    wait_for(lambda: processes_named(name), timeout=60, what="the daemon to start")
    procs.kill_hard(worker)
    assert processes_named(name), "the daemon outlives the worker"
    procs.start("worker", name="worker-2")
    final = wait_for(
        lambda: (s := magsag_json("status", run_id, env=cli_env))["status"] != "running" and s,
        timeout=90,
        what="the run to finish on the new worker",
    )
    assert final["status"] == "succeeded", final
    assert final["tasks"]["work"]["attempts"] == 1  # the same attempt, run again
    assert processes_named(name) == []


def test_gc_kills_the_daemon_of_a_run_that_is_over(procs, cli_env, repo, tmp_path):
    name = unique_name()
    worker = procs.start("worker", name="worker")
    prompt = f"echo partial > partial.txt; {daemon(name, tmp_path)}; sleep 300"
    run_id = magsag_json("run", _plan(tmp_path, prompt), "--repo", repo, "--detach",
                         env=cli_env)["run_id"]  # fmt: skip
    wait_for(lambda: processes_named(name), timeout=60, what="the daemon to start")
    procs.kill_hard(worker)
    subprocess.run(
        [temporal_binary(), "workflow", "terminate", "--address", cli_env["TEMPORAL_ADDRESS"],
         "-w", f"magsag-{run_id}", "--reason", "test"],
        check=True, capture_output=True,
    )  # fmt: skip
    (cleaned,) = magsag_json("gc", env=cli_env)
    assert cleaned["action"] == "saved and removed"
    assert processes_named(name) == []
    assert worktrees_left(repo) == []
