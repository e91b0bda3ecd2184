"""`magsag approve` / `reject` from another terminal while `magsag run` waits."""

import json

from tests.support.cli import magsag, magsag_json
from tests.support.poll import wait_for

PLAN = {
    "runners": {"sh": {"command": ["bash", "-c", "{prompt}"]}},
    "phases": [
        {"name": "build", "tasks": [{"name": "build", "prompt": "echo b > b.txt"}]},
        {"name": "deploy", "approval": True,
         "tasks": [{"name": "ship", "prompt": "cat b.txt > shipped.txt"}]},
        {"name": "announce", "tasks": [{"name": "tell", "prompt": "true", "approval": True}]},
    ],
}  # fmt: skip


def test_a_person_approves_and_rejects_from_another_terminal(procs, cli_env, repo, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    runner = procs.start("run", str(plan), "--repo", str(repo), name="run")
    log = tmp_path / "run.log"
    run_id = wait_for(lambda: (m := log.read_text()) and "started;" in m and m.split()[1],
                      timeout=60, what="the run to start")  # fmt: skip

    def gate(gate_id):
        return magsag_json("status", run_id, env=cli_env)["gates"][gate_id]["status"]

    wait_for(lambda: gate("phase:deploy") == "waiting", timeout=60, what="the deploy gate")
    early = magsag("approve", run_id, "--task", "tell", env=cli_env)
    assert early.returncode == 2
    assert "nothing waits at task:tell yet: its dependencies have not finished" in early.stderr
    done = magsag("approve", run_id, "--by", "alice", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "phase:deploy approved by alice" in done.stderr
    wait_for(lambda: gate("task:tell") == "waiting", timeout=60, what="the announce gate")
    again = magsag("approve", run_id, "--phase", "deploy", env=cli_env)
    assert again.returncode == 2 and "phase:deploy was already approved by alice" in again.stderr
    rejected = magsag("reject", run_id, "--reason", "not today", "--by", "bob", env=cli_env)
    assert rejected.returncode == 0, rejected.stderr

    assert runner.wait(timeout=60) == 0
    shown = log.read_text()
    assert "waits for approval: magsag approve" in shown  # the live view said so
    status = magsag_json("status", run_id, env=cli_env)
    assert status["tasks"]["ship"]["status"] == "succeeded"
    assert status["tasks"]["tell"]["status"] == "skipped"
    assert status["tasks"]["tell"]["error"] == "rejected by bob: not today"
    assert status["gates"]["phase:deploy"]["by"] == "alice"
    ended = magsag("approve", run_id, env=cli_env)
    assert ended.returncode == 2 and "already ended" in ended.stderr
    unknown = magsag("approve", "no-such-run", env=cli_env)
    assert unknown.returncode == 2 and "unknown run id" in unknown.stderr
