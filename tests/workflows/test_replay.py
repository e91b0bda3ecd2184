"""Invariant 1: workflow code is deterministic. Recorded histories replay cleanly.

Two sources: histories recorded now by running a plan that exercises every path
(success, retry, failure with WIP, conflict, skip), and committed JSON histories in
tests/fixtures/histories, recorded from earlier versions of the workflows, so a change
that breaks runs already in flight fails here. Record a new set with
MAGSAG_RECORD_HISTORIES=<label> (into tests/fixtures/histories/<label>/) after a change
guarded by workflow.patched; keep the older sets, which exercise the unpatched branch.
"""

import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from magsag.contracts import constants as C
from magsag.contracts.wire import data_converter
from magsag.workflows.registry import ALL_WORKFLOWS
from tests.support.delivery import bare_origin, standin_gh_here
from tests.support.poll import eventually
from tests.support.runs import bash_plan, run_input, run_plan, start_run

FIXTURES = Path(__file__).parent.parent / "fixtures" / "histories"

EVERY_PATH = [
    {"name": "ok", "prompt": "echo ok > ok.txt"},
    {"name": "flaky", "prompt": '[ "$MAGSAG_ATTEMPT" = 2 ] && echo f > f.txt', "retries": 1},
    {"name": "left", "prompt": "echo left > README.md"},
    {"name": "right", "prompt": "sleep 1; echo right > README.md", "critical": False},
    {"name": "broken", "prompt": "echo wip > wip.txt; exit 1", "critical": False},
    {"name": "after-broken", "prompt": "true", "depends_on": ["broken"]},
    {"name": "last", "prompt": "cat ok.txt f.txt > last.txt", "depends_on": ["ok", "flaky"]},
]
DELIVER = {"pull_request": {"title": "Replayed"}}


def _replayer() -> Replayer:
    # In Temporal's sandbox (the Replayer's default), unlike the workers: a clock, random or
    # I/O call in plan.py or task.py fails here.
    return Replayer(workflows=ALL_WORKFLOWS, data_converter=data_converter)


async def test_histories_of_a_run_through_every_path_replay(client, worker, repo, tmp_path):
    plan = bash_plan(EVERY_PATH, concurrency=8)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert {t.status.value for t in result.tasks.values()} == {
        "succeeded", "conflicted", "failed", "skipped"
    }  # fmt: skip
    await replay_and_record(client, inp.run_id, [n for n in result.tasks if n != "after-broken"])


async def test_histories_of_a_cancelled_run_replay(client, worker, repo, tmp_path):
    # A task cancelled mid-attempt saves its work as WIP; its history ends differently.
    started = tmp_path / "started"
    plan = bash_plan([{"name": "busy", "prompt": f"echo w > w.txt; touch {started}; sleep 60"}])
    inp = run_input(plan, repo, tmp_path, worker)
    handle = await start_run(client, inp)
    await eventually(started.exists, timeout=30, what="the agent to start")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await replay_and_record(client, inp.run_id, ["busy"], folder_suffix="-cancelled")


async def test_histories_of_resolved_and_unresolved_conflicts_replay(
    client, worker, repo, tmp_path
):
    # right's conflict is resolved; odd's resolver leaves the markers twice (a retry
    # after a backoff, then its partial work saved as WIP).
    tasks = [
        {"name": "left", "prompt": "echo left > README.md"},
        {"name": "right", "prompt": "sleep 1; echo right > README.md"},
        {"name": "odd", "prompt": "sleep 1; echo odd > README.md", "critical": False,
         "on_conflict": {"runner": "failing", "retries": 1}},
    ]  # fmt: skip
    runners = {
        "sh": {"command": ["bash", "-c", "{prompt}"]},
        "resolver": {"command": ["bash", "-c", "printf 'left\\nright\\n' > README.md"]},
        "failing": {"command": ["bash", "-c", "echo partial >> README.md"]},
    }
    plan = bash_plan(
        tasks, runners=runners, defaults={"runner": "sh"}, on_conflict={"runner": "resolver"}
    )
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    statuses = {name: (t.status.value, t.resolved_conflict) for name, t in result.tasks.items()}
    assert statuses["right"] == ("succeeded", True) and statuses["odd"] == ("conflicted", False)
    await replay_and_record(client, inp.run_id, list(result.tasks), folder_suffix="-resolve")


async def test_histories_of_a_delivered_run_replay(client, worker, repo, tmp_path, monkeypatch):
    # A succeeded run opens its pull request from one more activity at its end.
    bare_origin(repo, tmp_path)
    standin_gh_here(tmp_path, monkeypatch)
    plan = bash_plan([{"name": "ok", "prompt": "echo ok > ok.txt"}], deliver=DELIVER)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.pull_request.url
    await replay_and_record(client, inp.run_id, ["ok"], folder_suffix="-deliver")


async def test_histories_of_a_notifying_run_replay(client, worker, repo, tmp_path):
    # Notifications go out beside the run: a task's failure, and the run's end.
    tasks = [
        {"name": "ok", "prompt": "echo ok > ok.txt"},
        {"name": "broken", "prompt": "exit 1", "critical": False},
    ]
    plan = bash_plan(tasks, notify=[{"command": ["bash", "-c", "cat >> notes.jsonl"]}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert (Path(inp.paths.log_dir) / "notes.jsonl").read_text().count("run_finished") == 1
    await replay_and_record(client, inp.run_id, ["ok", "broken"], folder_suffix="-notify")


async def replay_and_record(
    client, run_id: str, tasks: list[str], folder_suffix: str = "", executions=(None,)
):
    """Replay the run's histories with today's code; record them when asked to.
    executions: run ids of the plan workflow's executions (continue-as-new), in order."""
    plan_id = C.plan_workflow_id(run_id)
    plans = [client.get_workflow_handle(plan_id, run_id=r) for r in executions]
    tasks_ = [client.get_workflow_handle(C.task_workflow_id(run_id, name)) for name in tasks]
    histories = [await handle.fetch_history() for handle in plans + tasks_]
    replayer = _replayer()
    failures = {}
    for history in histories:
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if replayed.replay_failure:
            failures[history.workflow_id] = str(replayed.replay_failure)
    assert failures == {}
    label = os.environ.get("MAGSAG_RECORD_HISTORIES")
    if label:  # a folder per recording: older ones stay, so patched code is replayed too
        folder = FIXTURES / f"{label}{folder_suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        for index, history in enumerate(histories):
            kind = "plan" if history.workflow_id == plan_id else "task"
            name = history.workflow_id.rsplit("/", 1)[-1] if kind == "task" else "run"
            if kind == "plan" and len(plans) > 1:
                name += f"-{index}"
            (folder / f"{kind}-{name}.json").write_text(history.to_json())


@pytest.mark.parametrize(
    "fixture",
    sorted(FIXTURES.rglob("*.json")),
    ids=lambda p: str(p.relative_to(FIXTURES).with_suffix("")),
)
async def test_committed_histories_replay(fixture: Path):
    history = WorkflowHistory.from_json(fixture.stem, fixture.read_text())
    await _replayer().replay_workflow(history)
