"""Agents that print too much or leave processes behind (issue 9, cases 4-6 and the log
cap): huge lines, endless output, children holding stdout open and daemons that left
the process group. Each attempt ends once, is counted once, and leaves no process."""

import json
import os
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from magsag.contracts import constants as C
from magsag.contracts.run import RunStatus, TaskStatus
from magsag.history.status import run_status
from tests.support.gitrepo import git_out
from tests.support.poll import eventually
from tests.support.processes import daemon, processes_named, unique_name
from tests.support.runs import (
    STANDINS,
    agent_plan,
    run_input,
    run_plan,
    start_run,
    worktrees_left,
)

COST = 0.0125  # what one run of the claude stand-in reports


@pytest.fixture(autouse=True)
def standins(monkeypatch):
    """The stand-in agent CLIs come first on PATH for the in-process worker."""
    monkeypatch.setenv("PATH", f"{STANDINS}:{os.environ['PATH']}")
    return monkeypatch


@pytest.fixture
def runs_file(standins, tmp_path) -> Path:
    """One line per run of a stand-in agent."""
    path = tmp_path / "agent-runs"
    standins.setenv("STANDIN_RUNS_FILE", str(path))
    return path


@pytest.mark.parametrize("size", [70_000, 30_000_000])
async def test_a_huge_line_from_an_agent_is_read_once_and_counted_once(
    size, client, worker, repo, tmp_path, standins, runs_file
):
    standins.setenv("STANDIN_SCENARIO", "huge_lines")  # an assistant text and a result text
    standins.setenv("STANDIN_LINE_BYTES", str(size))
    standins.setenv("MAGSAG_LOG_CAP_BYTES", str(1_000_000))
    plan = agent_plan([{"name": "big", "prompt": "work", "runner": "claude", "retries": 1}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["big"]
    assert task.status == TaskStatus.SUCCEEDED, task.error
    assert task.attempts == 1 and runs_file.read_text().splitlines() == ["big"]
    assert task.usage.cost_usd == pytest.approx(COST) == result.usage.cost_usd
    events = [json.loads(line) for line in Path(inp.paths.log_dir, "big.jsonl").open()]
    assert [e["kind"] for e in events].count("result") == 1
    log = Path(task.log_path).read_bytes()
    if size < 1_000_000:
        assert b"log cut" not in log and len(log) > 2 * size
    else:
        assert len(log) < 1_001_000
        assert log.endswith(b"the rest of this attempt's output was read and dropped]\n")


async def test_a_command_flooding_its_output_is_cut_in_the_log_and_never_blocked(
    client, worker, repo, tmp_path, standins
):
    standins.setenv("MAGSAG_LOG_CAP_BYTES", str(100_000))
    flood = "yes out | head -c 20000000; yes err | head -c 20000000 >&2; echo done > done.txt"
    plan = agent_plan([{"name": "flood", "runner": "sh", "prompt": flood}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["flood"]
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 1
    log = Path(task.log_path).read_text()
    assert len(log) < 101_000 and log.count("[magsag: log cut at 100000 bytes") == 1
    assert log.startswith("out\nout\n")


async def test_a_child_holding_the_agents_stdout_does_not_hold_the_attempt(
    client, worker, repo, tmp_path, standins, runs_file
):
    holder = unique_name()
    # The child keeps the agent's stdout open after the agent printed its result and
    # exited; it even left the process group.
    standins.setenv("STANDIN_SCENARIO", "shell")
    prompt = f"{daemon(holder, tmp_path, holds_stdout=True)}; echo a > a.txt"
    plan = agent_plan([{"name": "held", "prompt": prompt, "runner": "claude", "retries": 1}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["held"]
    assert task.status == TaskStatus.SUCCEEDED, task.error
    assert (task.finished_at - task.started_at).total_seconds() < 6  # the grace is 2 s
    assert task.attempts == 1 and runs_file.read_text().splitlines() == ["held"]
    assert task.usage.cost_usd == pytest.approx(COST)
    assert git_out(repo, "show", f"{C.integration_branch(inp.run_id)}:a.txt") == "a"
    assert processes_named(holder) == []


ENDINGS = {
    "succeeded": lambda daemon: {"prompt": f"{daemon}; echo ok > ok.txt"},
    "failed": lambda daemon: {"prompt": f"{daemon}; exit 3"},
    "timed out": lambda daemon: {"prompt": f"{daemon}; sleep 60", "timeout": "2s"},
    "check failed": lambda daemon: {"prompt": "true", "checks": [f"{daemon}; false"]},
}


@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_daemon_that_left_the_process_group_ends_with_the_attempt(
    ending, client, worker, repo, tmp_path
):
    name = unique_name()
    task = {"name": "t", "runner": "sh", "retries": 0, **ENDINGS[ending](daemon(name, tmp_path))}
    _, result = await run_plan(client, agent_plan([task]), repo, tmp_path, worker)
    expected = TaskStatus.SUCCEEDED if ending == "succeeded" else TaskStatus.FAILED
    assert result.tasks["t"].status == expected, result.tasks["t"].error
    assert processes_named(name) == []
    assert worktrees_left(repo) == []


async def test_a_daemon_that_left_the_process_group_ends_when_the_run_is_cancelled(
    client, worker, repo, tmp_path
):
    name = unique_name()
    busy = f"{daemon(name, tmp_path)}; sleep 300"
    plan = agent_plan([{"name": "busy", "runner": "sh", "prompt": busy}])
    inp = run_input(plan, repo, tmp_path, worker)
    handle = await start_run(client, inp)
    await eventually(lambda: processes_named(name), timeout=30, what="the daemon to start")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert processes_named(name) == []
    assert worktrees_left(repo) == []
    final = (await run_status(handle))[0]
    assert final.status == RunStatus.CANCELLED
