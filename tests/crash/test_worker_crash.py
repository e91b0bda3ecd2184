"""Invariant 2 and 4 against real faults: SIGKILL the worker, start another, lose nothing."""

import time
from pathlib import Path

from tests.support.cli import magsag_json
from tests.support.gitrepo import checkpoints_on, git_out
from tests.support.poll import wait_for
from tests.support.processes import pid_alive
from tests.support.runs import bash_plan_file, worktrees_left


def _status(run_id: str, env: dict) -> dict:
    return magsag_json("status", run_id, env=env)


def _kill_and_replace(procs, worker, run_id: str, env: dict, after_kill=lambda: None):
    """SIGKILL the worker (after_kill runs then), start another and wait for the run to
    end: its final status and the seconds from the kill to its end."""
    procs.kill_hard(worker)
    killed_at = time.monotonic()
    after_kill()
    procs.start("worker", name="worker-2")
    final = wait_for(
        lambda: (s := _status(run_id, env))["status"] != "running" and s,
        timeout=90,
        what="the run to finish on the new worker",
    )
    return final, time.monotonic() - killed_at


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
    plan = bash_plan_file(tmp_path, [
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

    def orphan_alive() -> None:
        assert pid_alive(orphan), "SIGKILL of the worker leaves its agent running"

    final, recovery = _kill_and_replace(procs, first, run_id, cli_env, orphan_alive)
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


def test_a_worker_killed_in_the_runs_first_step_costs_seconds(procs, cli_env, repo, tmp_path):
    # The integration branch is made by a local activity (workflows/repo_steps.py), inside
    # the run's first workflow task: a worker killed there is noticed when that workflow
    # task times out, and the next worker makes the branch (or finds it made).
    marks = tmp_path / "marks"
    marks.mkdir()
    hook = Path(repo) / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        "#!/bin/bash\n"
        '[ "$1" = prepared ] || exit 0\n'
        "while read -r old new ref; do\n"
        '  case "$ref" in refs/heads/magsag/*/integration)\n'
        f'    if [ "$old" = {"0" * 40} ] && [ ! -e {marks}/held ]; then\n'
        f"      touch {marks}/held; sleep 4; fi;;\n"
        "  esac\n"
        "done\n"
    )
    hook.chmod(0o755)
    plan = bash_plan_file(tmp_path, [{"name": "a", "prompt": "echo a > a.txt"}])
    first = procs.start("worker", name="worker-1")
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    wait_for((marks / "held").exists, timeout=60, what="the integration branch's creation")

    final, recovery = _kill_and_replace(procs, first, run_id, cli_env)

    assert final["status"] == "succeeded", final
    assert git_out(repo, "show", f"magsag/{run_id}/integration:a.txt") == "a"
    assert worktrees_left(repo) == []
    assert recovery < 60, f"recovery took {recovery:.1f}s"
