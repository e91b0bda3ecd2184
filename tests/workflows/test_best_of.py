"""Best-of-N: candidates side by side on their own branches, the winner integrated, every
candidate listed with its checks, diff size, cost and why it won or lost. Real workflows
on a real server, real git, bash and stand-in agents."""

import json

import pytest

from magsag.contracts import constants as C
from magsag.contracts.run import RunStatus, TaskStatus
from magsag.history.describe import describe_run
from tests.support.gitrepo import git_out
from tests.support.runs import agent_plan, bash_plan, run_plan
from tests.workflows.test_replay import replay_and_record

# Candidate n writes 5n lines; candidate 1 (the smallest diff) fails its check.
LINES_BY_CANDIDATE = {
    "name": "pick",
    "prompt": "seq $((MAGSAG_CANDIDATE * 5)) > out.txt",
    "candidates": 3,
    "checks": ['[ "$MAGSAG_CANDIDATE" != 1 ]'],
}


async def test_best_of_three_keeps_the_smallest_diff_that_passed(client, worker, repo, tmp_path):
    plan = bash_plan([LINES_BY_CANDIDATE])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED, result.tasks
    task = result.tasks["pick"]
    first, second, third = task.candidates
    assert [c.number for c in task.candidates] == [1, 2, 3]
    assert (first.status, second.status, third.status) == ("failed", "succeeded", "succeeded")
    assert "CheckFailed" in first.error and first.reason.startswith("failed: ")
    assert (second.diff_lines, third.diff_lines) == (10, 15)
    assert second.won and not third.won and not first.won
    assert second.reason == "smallest diff (10 lines) of 2 that passed"
    assert third.reason == "passed; larger diff (15 lines) than candidate 2"
    # The winner is the task's commit, on the task's own branch, and integrated.
    assert task.commit == second.commit and task.changed_files == ["out.txt"]
    assert git_out(repo, "rev-parse", C.task_branch(inp.run_id, "pick")) == second.commit
    integrated = git_out(repo, "show", f"{result.integration_commit}:out.txt")
    assert integrated.splitlines() == [str(i) for i in range(1, 11)]
    # Every candidate's branch is kept, the failed one's partial work as WIP.
    for c in task.candidates:
        assert c.branch == C.task_branch(inp.run_id, f"pick--candidate-{c.number}")
        assert git_out(repo, "rev-parse", c.branch) == c.commit
    assert git_out(repo, "show", f"{first.commit}:out.txt").splitlines()[-1] == "5"
    assert task.attempts == 3  # one each: the budget counts every candidate
    # `runs describe`: each candidate's attempt, and why each won or lost.
    handle = client.get_workflow_handle(C.plan_workflow_id(inp.run_id))
    view = (await describe_run(client, handle, result, closed=True)).tasks["pick"]
    assert view.candidates == task.candidates
    assert sorted(a.candidate for a in view.attempts) == [1, 2, 3]
    lines = [e.text for e in view.timeline]
    assert "candidate 2 (sh, 10 lines) won: smallest diff (10 lines) of 2 that passed" in lines
    assert any(line.startswith("candidate 1: attempt 1 failed") for line in lines)
    await replay_and_record(client, inp.run_id, ["pick"], folder_suffix="-smallest")


async def test_a_judge_command_picks_the_winner(client, worker, repo, tmp_path, standins):
    judge = (
        "for n in $MAGSAG_CANDIDATES; do "
        "w=MAGSAG_CANDIDATE_${n}_WORKTREE; d=MAGSAG_CANDIDATE_${n}_DIFF; "
        'test -f "${!w}/judged.out" && grep -q "judged.out" "${!d}" || exit 9; done; '
        'echo "looking at $MAGSAG_TASK"; echo 3'
    )
    plan = agent_plan(
        [{"name": "judged", "prompt": "do it", "candidates": ["claude", "claude", "codex"],
          "judge": judge}]
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["judged"]
    assert result.status == RunStatus.SUCCEEDED, task
    assert [(c.runner, c.won) for c in task.candidates] == [
        ("claude", False), ("claude", False), ("codex", True)
    ]  # fmt: skip
    assert task.candidates[2].reason == "chosen by the judge"
    assert task.candidates[0].reason == "passed; the judge chose candidate 3"
    assert task.commit == task.candidates[2].commit
    assert "codex stand-in" in git_out(repo, "show", f"{task.commit}:judged.out")
    # Usage and cost count every candidate.
    costs = [c.usage.cost_usd for c in task.candidates]
    assert costs[:2] == [pytest.approx(0.0125)] * 2 and costs[2] > 0
    assert task.usage.cost_usd == pytest.approx(sum(costs))
    assert result.usage.cost_usd == pytest.approx(sum(costs))
    await replay_and_record(client, inp.run_id, ["judged"], folder_suffix="-judge")


async def test_a_judge_that_names_no_passing_candidate_falls_back_to_the_smallest_diff(
    client, worker, repo, tmp_path
):
    plan = bash_plan([LINES_BY_CANDIDATE | {"judge": "echo 1"}])  # 1 failed its check
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    winner = next(c for c in result.tasks["pick"].candidates if c.won)
    assert winner.number == 2
    assert winner.reason == (
        "smallest diff (10 lines) of 2 that passed (the judge printed 1, not one of [2, 3])"
    )


async def test_candidates_count_against_the_concurrency(client, worker, repo, tmp_path):
    log = tmp_path / "order.log"
    plan = bash_plan(
        [
            {"name": "best", "candidates": 3, "priority": 1,
             "prompt": f"echo start >> {log}; sleep 1; echo end >> {log}; echo x > c"},
            {"name": "plain", "prompt": f"echo plain >> {log}"},
        ],
        concurrency=3,
    )  # fmt: skip
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED, result.tasks
    assert log.read_text().split() == ["start"] * 3 + ["end"] * 3 + ["plain"]


async def test_no_candidate_passing_fails_the_task_and_keeps_every_branch(
    client, worker, repo, tmp_path
):
    plan = bash_plan([{"name": "hard", "prompt": "echo x > x.txt; exit 1", "candidates": 2}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["hard"]
    assert result.status == RunStatus.FAILED and task.status == TaskStatus.FAILED
    assert task.error.startswith("no candidate passed: 1: AgentFailed")
    assert all(c.commit and not c.won for c in task.candidates)


async def test_a_claude_judge_picks_the_winner_and_its_cost_counts(
    client, worker, repo, tmp_path, standins
):
    # The answer names 2 and 15 before its last line: only the last passing number counts.
    standins.setenv("STANDIN_JUDGE_ANSWER", "2 is smaller, but 3 counts to 15.\n3")
    standins.setenv("STANDIN_ARGV_FILE", str(tmp_path / "argv.jsonl"))
    judge = {"runner": "claude", "prompt": "Prefer the longest count."}
    plan = agent_plan([LINES_BY_CANDIDATE | {"runner": "sh", "judge": judge}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["pick"]
    assert result.status == RunStatus.SUCCEEDED, task
    winner = next(c for c in task.candidates if c.won)
    assert (winner.number, winner.reason) == (3, "chosen by the judge (claude)")
    assert task.commit == winner.commit  # not the smallest diff (candidate 2)
    # The judge's cost is the task's (the bash candidates cost nothing) and the run's.
    assert task.judge_usage.cost_usd == pytest.approx(0.0125)
    assert task.usage.cost_usd == result.usage.cost_usd == pytest.approx(0.0125)
    # Its prompt: the task, the instructions, each passing candidate's runner, size and diff.
    (call,) = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    prompt = call["argv"][-1]
    assert "seq $((MAGSAG_CANDIDATE * 5))" in prompt and "Prefer the longest count." in prompt
    assert "## Candidate 2 (runner sh, 10 lines changed, checkout ./2)" in prompt
    assert "+10\n" in prompt and "+15\n" in prompt and "Candidate 1 " not in prompt
    handle = client.get_workflow_handle(C.plan_workflow_id(inp.run_id))
    view = (await describe_run(client, handle, result, closed=True)).tasks["pick"]
    assert view.judge_usage == task.judge_usage
    assert any(e.text.startswith("judged by claude: $0.0125") for e in view.timeline)


async def test_a_judge_runner_that_fails_falls_back_to_the_smallest_diff(
    client, worker, repo, tmp_path, standins
):
    standins.setenv("STANDIN_SCENARIO_JUDGE", "error")
    plan = agent_plan([LINES_BY_CANDIDATE | {"runner": "sh", "judge": {"runner": "claude"}}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["pick"]
    winner = next(c for c in task.candidates if c.won)
    assert winner.number == 2
    assert winner.reason.startswith(
        "smallest diff (10 lines) of 2 that passed (the judge (claude) failed: AgentFailed"
    )
    assert task.judge_usage.cost_usd == pytest.approx(0.0125)  # a failed judge costs too
