"""Agent runners end to end: stand-in claude, codex and gemini executables on PATH that
print the real output formats, driven by real workflows on a real server."""

import json
from pathlib import Path

import pytest

from magsag.contracts.run import RunStatus, TaskStatus
from tests.support.runs import agent_plan, run_plan

pytestmark = pytest.mark.usefixtures("standins")


async def test_a_mixed_plan_reports_usage_and_cost_per_task_and_run(client, worker, repo, tmp_path):
    plan = agent_plan(
        [
            {"name": "c1", "prompt": "add a feature", "runner": "claude"},
            {"name": "x1", "prompt": "add a test", "runner": "codex"},
            {"name": "g1", "prompt": "write docs", "runner": "gemini"},
            {"name": "s1", "prompt": "echo plain > plain.txt", "runner": "sh"},
        ]
    )
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED, result.tasks
    claude, codex, gemini, plain = (result.tasks[n].usage for n in ("c1", "x1", "g1", "s1"))
    assert (claude.input_tokens, claude.output_tokens, claude.cache_read_tokens) == (100, 50, 10)
    assert claude.cost_usd == pytest.approx(0.0125) and not claude.cost_estimated
    assert (codex.input_tokens, codex.cache_read_tokens, codex.output_tokens) == (800, 200, 300)
    assert codex.cost_usd > 0 and codex.cost_estimated  # priced from magsag's table
    assert gemini.cost_usd > 0 and gemini.cost_estimated
    assert plain.cost_usd == 0 and plain.input_tokens == 0
    total = result.usage
    assert total.cost_usd == pytest.approx(claude.cost_usd + codex.cost_usd + gemini.cost_usd)
    assert total.output_tokens == 50 + 300 + gemini.output_tokens
    assert total.cost_estimated
    # The agent's events are in the task's JSONL log, not in history.
    events = [json.loads(line) for line in Path(inp.paths.log_dir, "c1.jsonl").open()]
    assert {"init", "result"} <= {e["kind"] for e in events}


async def test_a_rate_limit_waits_for_its_reset_without_using_a_retry(
    client, worker, repo, tmp_path, standins
):
    standins.setenv("STANDIN_SCENARIO_limited", "rate_limit")
    plan = agent_plan([{"name": "limited", "prompt": "work", "runner": "claude", "retries": 0}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["limited"]
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 1
    assert (task.finished_at - task.started_at).total_seconds() >= 1  # it waited


@pytest.mark.parametrize(
    "scenario,kind,attempts",
    [
        ("auth", "AgentAuthError", 1),  # not retried: no attempt can fix a login
        ("no_result", "AgentNoResult", 2),
        ("error", "AgentFailed", 2),
    ],
)
async def test_agent_failures_are_told_apart(
    scenario, kind, attempts, client, worker, repo, tmp_path, standins
):
    standins.setenv("STANDIN_SCENARIO", scenario)
    standins.delenv("STANDIN_ONCE_DIR")
    plan = agent_plan([{"name": "t", "prompt": "work", "runner": "claude", "retries": 1}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["t"]
    assert task.status == TaskStatus.FAILED
    assert task.error.startswith(kind) and task.attempts == attempts


async def test_an_agent_that_hangs_after_its_result_is_stopped(
    client, worker, repo, tmp_path, standins
):
    standins.setenv("STANDIN_SCENARIO", "hang_after_result")
    standins.setenv("MAGSAG_RESULT_EXIT_GRACE", "1")
    plan = agent_plan([{"name": "t", "prompt": "work", "runner": "claude"}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.tasks["t"].status == TaskStatus.FAILED
    assert "printed its result but did not exit" in result.tasks["t"].error


async def test_a_cost_budget_stops_new_tasks(client, worker, repo, tmp_path):
    plan = agent_plan(
        [{"name": f"c{i}", "prompt": "work", "runner": "claude"} for i in range(4)],
        concurrency=1,
        budget={"max_cost_usd": 0.02},
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.BUDGET_EXCEEDED
    assert [result.tasks[f"c{i}"].status for i in range(4)] == [
        "succeeded", "succeeded", "skipped", "skipped"
    ]  # fmt: skip
    assert result.usage.cost_usd == pytest.approx(0.025)
