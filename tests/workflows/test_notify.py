"""`notify:` targets get a JSON document at the moments they ask for (an approval
waiting, a task failed, a conflict, the run's end), by POST or on a command's stdin; a
target that fails (HTTP 500, exit 1, nothing listening) is recorded and never fails
the run."""

import json
from pathlib import Path

from magsag.contracts.plan_loader import load_plan
from magsag.contracts.run import GateDecision, RunStatus
from magsag.history import run_log
from magsag.workflows.plan import PlanWorkflow
from tests.support.gitrepo import make_repo
from tests.support.net import free_port
from tests.support.poll import eventually
from tests.support.runs import bash_plan, run_input, run_plan, start_run
from tests.support.webhook import webhook

RECORD = "cat >> notes.jsonl; echo >> notes.jsonl"  # the command runs in the run's folder
TASKS = [
    {"name": "ok", "prompt": "echo ok > ok.txt"},
    {"name": "broken", "prompt": "echo 'no luck' >&2; exit 1", "critical": False},
    {"name": "left", "prompt": "echo left > README.md"},
    {"name": "right", "prompt": "sleep 1; echo right > README.md", "critical": False},
    {"name": "gated", "prompt": "true", "approval": True, "depends_on": ["ok"]},
]


async def test_notifications_reach_their_targets_and_failing_ones_never_fail_the_run(
    client, worker, repo, tmp_path
):
    with webhook() as (url, received):
        notify = [
            {"url": f"{url}/hook"},
            {"command": ["bash", "-c", RECORD], "events": ["task_failed", "run_finished"]},
            {"url": f"{url}/fail", "events": ["run_finished"]},
            {"command": ["bash", "-c", "echo refused >&2; exit 1"], "events": ["task_failed"]},
            {"url": f"http://127.0.0.1:{free_port()}/nobody", "events": ["run_finished"]},
        ]
        inp = run_input(bash_plan(TASKS, notify=notify), repo, tmp_path, worker)
        inp = inp.model_copy(update={"web_ui": "http://ui.example/run"})
        handle = await start_run(client, inp)
        # The run waits for approval; the webhook has been told, and how to approve.
        await eventually(lambda: "approval_waiting" in received.events("/hook"), what="a ping")
        await handle.execute_update(PlanWorkflow.approve, GateDecision(task="gated", by="me"))
        result = await handle.result()

    assert result.status == RunStatus.SUCCEEDED  # its failed targets notwithstanding
    hook = received.events("/hook")
    assert sorted(hook[:-1]) == ["approval_waiting", "conflict", "task_failed"]
    assert hook[-1] == "run_finished"
    docs = {doc["event"]: doc for path, _, doc in received if path == "/hook"}
    assert {ctype for _, ctype, _ in received} == {"application/json"}
    waiting = docs["approval_waiting"]
    assert (waiting["gate"], waiting["task"], waiting["status"]) == (
        "task:gated",
        "gated",
        "waiting",
    )
    assert f"magsag approve {inp.run_id} --task gated" in waiting["text"]
    failed = docs["task_failed"]
    assert (failed["task"], failed["status"], failed["plan"]) == ("broken", "failed", "test")
    assert failed["run_id"] == inp.run_id and failed["web_ui"] == "http://ui.example/run"
    assert failed["counts"]["failed"] == 1
    assert docs["conflict"]["task"] == "right" and "README.md" in docs["conflict"]["error"]
    end = docs["run_finished"]
    assert end["status"] == "succeeded"
    assert end["counts"] == {"succeeded": 3, "failed": 1, "conflicted": 1}
    assert received.events("/fail") == ["run_finished"] * 3  # three attempts, then dropped

    # The command got the events it asked for, one JSON document each, on stdin.
    notes = Path(inp.paths.log_dir, "notes.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in notes if line] == ["task_failed", "run_finished"]

    log = run_log.read(inp.paths.log_dir)
    failures = {(e["target"], e["attempt"]) for e in log if e["event"] == "notify_failed"}
    nobody = notify[4]["url"].removesuffix("nobody") + "…"
    assert {attempt for target, attempt in failures if target == "bash"} == {1, 2, 3}
    assert {attempt for target, attempt in failures if target == nobody} == {1, 2, 3}
    assert any(e["event"] == "notify_failed" and "HTTP 500" in e["error"] for e in log)
    assert any(e["event"] == "notify_failed" and "refused" in e["error"] for e in log)
    assert run_log.run_end(log)["status"] == "succeeded"


async def test_the_notify_example_writes_its_notifications_in_the_runs_folder(
    client, worker, tmp_path
):
    repo = make_repo(tmp_path / "repo")
    plan = load_plan(Path(__file__).parents[2] / "examples" / "notify.yaml")
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    lines = Path(inp.paths.log_dir, "notifications.jsonl").read_text().splitlines()
    [end] = [json.loads(line) for line in lines if line]
    assert (end["event"], end["status"], end["counts"]) == (
        "run_finished",
        "succeeded",
        {"succeeded": 2},
    )
