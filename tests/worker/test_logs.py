"""`magsag worker` logs what it does: a line per record, with the run and task it is about."""

import re
import signal
import subprocess

from magsag.contracts import constants as C
from tests.support.cli import MAGSAG, magsag, magsag_json

PLAN = """
runners: {sh: {command: [bash, -c, '{prompt}']}}
tasks:
  - {name: hello, prompt: "echo hi > hi.txt"}
  - {name: broken, prompt: "exit 3", critical: false}
"""
RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) \S+")


async def test_worker_logs_activity_lines_with_their_run_and_task(tmp_path, repo, cli_env, client):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen([MAGSAG, "worker"], env=cli_env, stderr=stderr)
    try:
        await client.get_workflow_handle(C.plan_workflow_id(run_id)).result()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    lines = log.read_text().splitlines()
    # A worktree made, or one the run parked taken (activities/parking.py).
    created = [line for line in lines if "on new branch" in line]
    assert len(created) == 2, lines
    prefix = f" INFO temporalio.activity run={run_id} task=hello activity=run_agent: "
    assert any(prefix in line and "worktree" in line for line in created), created
    # The failed attempt is one line with its reason, not a traceback.
    failed = [line for line in lines if "Completing activity as failed" in line]
    assert failed and all("task=broken" in line for line in failed), lines
    assert any("agent exited with code 3" in line for line in failed), failed
    # Every record is one line; the rest is the command's own word on stderr.
    own = [line for line in lines if not RECORD.match(line)]
    assert all(line.startswith("worker ") for line in own), own
    assert "'activity_id'" not in log.read_text()  # the SDK's dict is not repeated


def test_a_bad_log_level_exits_2_in_one_line(cli_env):
    done = magsag("worker", env={**cli_env, "MAGSAG_LOG_LEVEL": "chatty"})
    assert done.returncode == 2
    expected = "error: MAGSAG_LOG_LEVEL=chatty: use DEBUG, INFO, WARNING or ERROR"
    assert done.stderr.strip() == expected
