"""`magsag worker --host NAME --max-agents N`: the host queue a worker serves, and how many
agents it runs at once."""

import asyncio
import json
import signal
import subprocess
import uuid

from temporalio.service import RPCError, RPCStatusCode

from magsag.cli import server_cmd
from tests.support.cli import MAGSAG, magsag, magsag_json
from tests.support.poll import wait_for
from tests.support.runs import bash_plan_file


def test_a_worker_named_by_host_runs_at_most_max_agents_at_once(tmp_path, repo, cli_env):
    host = f"named-{uuid.uuid4().hex[:6]}"
    spans = tmp_path / "spans"
    prompt = f"echo start $(date +%s.%N) >> {spans}; sleep 0.6; echo end $(date +%s.%N) >> {spans}"
    tasks = [{"name": f"t{n}", "prompt": f"{prompt}; echo x > t{n}.txt"} for n in range(3)]
    plan = bash_plan_file(tmp_path, tasks, concurrency=3)
    worker_env = {k: v for k, v in cli_env.items() if k != "MAGSAG_HOST"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [MAGSAG, "worker", "--host", host, "--max-agents", "1"], env=worker_env, stderr=out
        )
    try:
        wait_for(lambda: "polling" in log.read_text(), timeout=60, what="the worker")
        said = log.read_text()
        assert f"'magsag-host-{host}'" in said and "at most 1 agents at once" in said
        assert f"'{cli_env['MAGSAG_TASK_QUEUE']}-any-host'" in said  # runs on remote URLs
        # The run's activities go to the queue of the host it names: this worker's.
        run_env = {**cli_env, "MAGSAG_HOST": host}
        run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=run_env)["run_id"]
        status = wait_for(
            lambda: (s := json.loads(magsag("status", run_id, "--json", env=cli_env).stdout))
            ["status"] != "running" and s,
            timeout=120, what="the run to end",
        )  # fmt: skip
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert status["status"] == "succeeded"
    tasks = status["tasks"].values() if isinstance(status["tasks"], dict) else status["tasks"]
    assert {task["host"] for task in tasks} == {host}  # status says which host ran each
    events = sorted(
        (float(at), kind) for kind, at in (line.split() for line in spans.read_text().splitlines())
    )
    assert [kind for _, kind in events] == ["start", "end"] * 3  # one agent at a time


def test_a_bad_host_name_is_one_line(cli_env):
    done = magsag("worker", "--host", "a/b", env=cli_env)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --host 'a/b': give a name without '/'"


async def test_a_server_too_busy_to_list_pollers_does_not_stop_the_worker(monkeypatch):
    """The worker says it polls once the server lists its pollers; a describe the server
    fails to answer is asked again, not the end of the worker."""
    answers = [RPCError("busy", RPCStatusCode.UNAVAILABLE, b""), False, True]

    async def present(_client, _queue) -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(server_cmd, "workers_present", present)
    await asyncio.wait_for(server_cmd._until_the_server_sees(None, "queue", asyncio.Event()), 5)
    assert answers == []  # asked until the pollers were listed
