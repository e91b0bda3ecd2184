"""Ctrl-C on `magsag run`: one line says what becomes of the run and what to type next."""

import json
import re
import signal

import pytest

from tests.support.cli import magsag
from tests.support.poll import wait_for
from tests.support.runs import bash_plan_file


@pytest.fixture
def held_plan(tmp_path):
    """One task that says it started, then waits for the test's `go`."""
    marks = tmp_path / "marks"
    marks.mkdir()
    prompt = f"touch {marks}/started; until [ -e {marks}/go ]; do sleep 0.1; done; echo a > a.txt"
    return bash_plan_file(tmp_path, [{"name": "a", "prompt": prompt}]), marks


def interrupt_run(procs, plan, repo, tmp_path) -> tuple[str, str]:
    """Start `magsag run`, press Ctrl-C while its agent works; (run id, what it printed)."""
    cli = procs.start("run", str(plan), "--repo", str(repo), name="run-cli")
    log = tmp_path / "run-cli.log"
    started = wait_for(lambda: re.search(r"run (\S+) started", log.read_text()), timeout=60,
                       what="the run to start")  # fmt: skip
    wait_for(lambda: (plan.parent / "marks" / "started").exists(), timeout=60, what="the agent")
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=30) == 130
    return started.group(1), log.read_text()


def test_ctrl_c_when_the_command_ran_the_only_worker(procs, cli_env, repo, tmp_path, held_plan):
    plan, marks = held_plan
    run_id, printed = interrupt_run(procs, plan, repo, tmp_path)
    assert "running one in this process" in printed
    assert printed.splitlines()[-1] == (
        f"interrupted: run {run_id} waits for a worker (this command ran the only one, now "
        f"stopped); `magsag watch {run_id}` or `magsag worker` lets it go on, "
        f"`magsag cancel {run_id}` stops it"
    )
    # As said: `watch` lets it go on.
    (marks / "go").touch()
    watched = magsag("watch", run_id, "--json", env=cli_env, timeout=120)
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["status"] == "succeeded"


def test_ctrl_c_when_a_worker_runs_the_run(procs, cli_env, repo, tmp_path, held_plan):
    plan, marks = held_plan
    procs.start("worker", name="worker")
    wait_for(lambda: "polling" in (tmp_path / "worker.log").read_text(), timeout=60,
             what="the worker")  # fmt: skip
    run_id, printed = interrupt_run(procs, plan, repo, tmp_path)
    assert "running one in this process" not in printed
    assert printed.splitlines()[-1] == (
        f"interrupted: run {run_id} goes on with its worker; follow it with "
        f"`magsag watch {run_id}`, stop it with `magsag cancel {run_id}`"
    )
    # As said: it goes on without this command.
    (marks / "go").touch()
    status = wait_for(
        lambda: (s := json.loads(magsag("status", run_id, "--json", env=cli_env).stdout))
        ["status"] != "running" and s,
        timeout=60, what="the run to end",
    )  # fmt: skip
    assert status["status"] == "succeeded"
