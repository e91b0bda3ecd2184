"""What a person watching a run sees: a live table on a terminal, stale agents flagged."""

import os
import pty
import subprocess

import pytest

from tests.support.cli import MAGSAG, magsag, magsag_json
from tests.support.poll import wait_for

PLAN = """
runners: {sh: {command: [bash, -c, "{prompt}"]}}
tasks:
  - {name: talker, prompt: "echo working on it; sleep 1; echo t > t.txt"}
  - {name: quiet, prompt: "echo starting; sleep 4; echo q > q.txt"}
"""


def _run_on_a_terminal(args: list, env: dict) -> tuple[int, str]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen([MAGSAG, *map(str, args)], env=env, stdin=follower,
                            stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_run_shows_a_live_table(tmp_path, repo, cli_env):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    code, screen = _run_on_a_terminal(["run", plan, "--repo", repo], cli_env)
    assert code == 0, screen
    for expected in ("last agent event", "2/2 tasks done", "━", "working on it"):
        assert expected in screen


def test_without_a_terminal_run_prints_plain_lines(tmp_path, repo, cli_env):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    done = magsag("run", plan, "--repo", repo, env=cli_env)
    assert done.returncode == 0
    assert "\x1b[" not in done.stderr  # no cursor movement, nothing redrawn
    assert sum("talker" in line and "succeeded" in line for line in done.stderr.splitlines()) == 1


@pytest.mark.serial  # `status` must see the flag within the 2.5 s the agent stays silent
def test_an_agent_silent_for_too_long_is_flagged_stale_not_killed(tmp_path, repo, cli_env):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    env = {**cli_env, "MAGSAG_STALE_AFTER": "1.5"}
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=env)["run_id"]
    worker = subprocess.Popen([MAGSAG, "worker"], env=env, stderr=subprocess.DEVNULL)
    try:
        stale = wait_for(
            lambda: (s := magsag_json("status", run_id, env=env))["tasks"]["quiet"]["stale"] and s,
            timeout=60,
            what="the quiet agent to be flagged",
        )
        assert stale["tasks"]["quiet"]["status"] == "running"
        final = wait_for(
            lambda: (s := magsag_json("status", run_id, env=env))["status"] != "running" and s,
            timeout=60,
            what="the run to end",
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert final["tasks"]["quiet"]["status"] == "succeeded"  # flagged, never killed
    assert not final["tasks"]["quiet"]["stale"]
