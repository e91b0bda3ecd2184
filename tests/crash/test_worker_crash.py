"""Invariant 2 and 4 against real faults: SIGKILL the worker, start another, lose nothing."""

import json
import os
import random
import time
from pathlib import Path

import pytest

from tests.support.cli import magsag, magsag_json
from tests.support.gitrepo import git_out
from tests.support.poll import wait_for
from tests.support.processes import pid_alive
from tests.support.runs import worktrees_left


def _write_plan(path: Path, tasks: list[dict]) -> Path:
    plan = {"name": "crash", "runners": {"sh": {"command": ["bash", "-c", "{prompt}"]}},
            "tasks": tasks}  # fmt: skip
    path.write_text(json.dumps(plan))  # JSON is YAML
    return path


def _status(run_id: str, env: dict) -> dict:
    return magsag_json("status", run_id, env=env)


def checkpoints_on(repo: Path, branch: str) -> list[str]:
    """Task names of the checkpoint commits reachable from branch (merges excluded)."""
    out = git_out(repo, "log", "--no-merges", "--format=%(trailers:key=Magsag-Task,valueonly)",
                  branch)  # fmt: skip
    return [line for line in out.splitlines() if line]


def test_a_killed_worker_mid_agent_is_replaced_and_nothing_is_lost(procs, cli_env, repo, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    victim = (
        f'echo "$MAGSAG_ATTEMPT $$" >> {marks}/victim.runs; '
        f"if [ ! -e {marks}/sleeper ]; then sleep 300 & echo $! > {marks}/sleeper; wait; fi; "
        # A zombie is dead; only a running or sleeping orphan counts as alive.
        f"state=$(cut -d' ' -f3 /proc/$(cat {marks}/sleeper)/stat 2>/dev/null); "
        f'[ -n "$state" ] && [ "$state" != Z ] && echo "$state" > {marks}/orphan-seen; '
        "echo v > victim.txt"
    )
    plan = _write_plan(tmp_path / "plan.json", [
        {"name": "early", "prompt": f"echo run >> {marks}/early.runs; echo e > early.txt"},
        {"name": "victim", "prompt": victim},
        {"name": "after", "prompt": "cat early.txt victim.txt > after.txt",
         "depends_on": ["early", "victim"]},
    ])  # fmt: skip
    first = procs.start("worker", name="worker-1")
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    wait_for(lambda: (marks / "sleeper").exists(), timeout=60, what="the victim's agent")
    wait_for(lambda: _status(run_id, cli_env)["tasks"]["early"]["status"] == "succeeded",
             timeout=60, what="early to be merged")  # fmt: skip
    orphan = int((marks / "sleeper").read_text())

    procs.kill_hard(first)
    killed_at = time.monotonic()
    assert pid_alive(orphan), "SIGKILL of the worker leaves its agent running"
    procs.start("worker", name="worker-2")
    final = wait_for(
        lambda: (s := _status(run_id, cli_env))["status"] != "running" and s,
        timeout=90,
        what="the run to finish on the new worker",
    )
    recovery = time.monotonic() - killed_at
    print(f"recovery after worker kill: {recovery:.1f}s")  # read by soak runs (pytest -s)

    assert final["status"] == "succeeded", final
    assert not pid_alive(orphan)
    assert not (marks / "orphan-seen").exists(), "the orphan was alive when the retry ran"
    assert (marks / "early.runs").read_text().count("run") == 1  # finished work not redone
    runs = (marks / "victim.runs").read_text().split("\n")
    assert [line.split()[0] for line in runs if line] == ["1", "1"]  # same attempt, retried
    assert final["tasks"]["victim"]["attempts"] == 1
    integration = f"magsag/{run_id}/integration"
    assert sorted(checkpoints_on(repo, integration)) == ["after", "early", "victim"]
    assert git_out(repo, "show", f"{integration}:after.txt") == "e\nv"
    assert worktrees_left(repo) == []
    assert recovery < 60, f"recovery took {recovery:.1f}s"


# Seconds after the run starts at which the worker dies: fixed points in `make test`;
# MAGSAG_KILL_SOAK=N draws N random ones instead (the soak reported in issue notes).
KILL_POINTS = [0.0, 0.8, 1.6, 2.4, 3.2]
SOAK = int(os.environ.get("MAGSAG_KILL_SOAK", "0"))
if SOAK:
    KILL_POINTS = sorted(round(random.uniform(0, 4.5), 2) for _ in range(SOAK))


@pytest.mark.parametrize("delay", KILL_POINTS)
def test_a_worker_killed_at_any_point_loses_and_repeats_nothing(
    delay, procs, cli_env, repo, tmp_path
):
    chain = [{"name": f"s{i}", "prompt": f"sleep 0.4; echo {i} > s{i}.txt",
              **({"depends_on": [f"s{i - 1}"]} if i else {})} for i in range(4)]  # fmt: skip
    wide = [{"name": f"w{i}", "prompt": f"sleep 0.6; echo {i} > w{i}.txt"} for i in range(3)]
    plan = _write_plan(tmp_path / "plan.json", chain + wide)
    first = procs.start("worker", name="worker-1")
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    time.sleep(delay)  # the kill point itself; what follows polls
    procs.kill_hard(first)
    procs.start("worker", name="worker-2")
    final = wait_for(
        lambda: (s := _status(run_id, cli_env))["status"] != "running" and s,
        timeout=120,
        what="the run to finish",
    )
    assert final["status"] == "succeeded", final
    names = [t["name"] for t in chain + wide]
    assert sorted(checkpoints_on(repo, f"magsag/{run_id}/integration")) == sorted(names)
    assert worktrees_left(repo) == []
    assert not list(Path(cli_env["MAGSAG_STATE_DIR"], "worktrees").glob("*/*"))
    status = magsag("status", run_id, env=cli_env)
    assert status.returncode == 0
