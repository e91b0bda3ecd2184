"""Sessions that continue: a rate-limited attempt continues the agent's own session in the
worktree it left, and `retry: continue` does the same after failed checks. Stand-in agent
CLIs record their argv; real workflows on a real server, real git."""

import json
from pathlib import Path

import pytest

from magsag.contracts.run import AgentSession, RunStatus, TaskStatus
from tests.support.runs import agent_plan, branch_files, run_plan
from tests.workflows.test_replay import replay_and_record

pytestmark = pytest.mark.usefixtures("standins")

# How each agent CLI is told to continue a session.
RESUME_ARGS = {
    "claude": lambda session: ["--resume", session],
    "codex": lambda session: ["resume", session],
}


def recorded_argv(path: Path) -> list[list[str]]:
    return [json.loads(line)["argv"] for line in path.read_text().splitlines()]


def follows(argv: list[str], pair: list[str]) -> bool:
    return any(argv[i : i + 2] == pair for i in range(len(argv) - 1))


async def rate_limited_run(name, runner, client, worker, repo, tmp_path, standins):
    """A task "build the parser" whose first run hits a rate limit after writing
    partial.txt; the stand-ins record their argv (returned, with the run)."""
    argv_file = tmp_path / "argv.jsonl"
    standins.setenv(f"STANDIN_SCENARIO_{name}", "rate_limit")
    standins.setenv("STANDIN_PARTIAL", "partial.txt")
    standins.setenv("STANDIN_ARGV_FILE", str(argv_file))
    plan = agent_plan([{"name": name, "prompt": "build the parser", "runner": runner}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    return argv_file, inp, result


@pytest.mark.parametrize("runner", ["claude", "codex"])
async def test_a_rate_limited_attempt_continues_its_session_on_its_partial_work(
    runner, client, worker, repo, tmp_path, standins
):
    argv_file, inp, result = await rate_limited_run(
        "limited", runner, client, worker, repo, tmp_path, standins
    )

    task = result.tasks["limited"]
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 1
    first, resumed = recorded_argv(argv_file)
    [session] = {s.session_id for s in task.sessions}
    assert task.sessions == [
        AgentSession(attempt=1, session_id=session, resumed=False),
        AgentSession(attempt=1, session_id=session, resumed=True),
    ]
    assert not follows(first, RESUME_ARGS[runner](session))
    assert follows(resumed, RESUME_ARGS[runner](session))
    assert "build the parser" in first[-1]
    assert "build the parser" not in resumed[-1] and "Continue the task" in resumed[-1]
    # What the session did before the limit is in the checkpoint, beside what it did after.
    assert {"partial.txt", "limited.out"} <= branch_files(repo, task.commit)
    await replay_and_record(client, inp.run_id, ["limited"], folder_suffix=f"-limited-{runner}")


@pytest.mark.parametrize("retry", ["continue", None])
async def test_a_retry_after_failed_checks_continues_the_session_only_when_asked(
    retry, client, worker, repo, tmp_path, standins
):
    argv_file = tmp_path / "argv.jsonl"
    standins.setenv("STANDIN_WRITE", "{task}-{attempt}.out")
    standins.setenv("STANDIN_ARGV_FILE", str(argv_file))
    task_spec = {
        "name": "t",
        "prompt": "write the report",
        "runner": "claude",
        "retries": 1,
        "checks": ["test -e t-2.out"],  # only the second attempt passes
    }
    defaults = {"retry": retry} if retry else {}
    plan = agent_plan([task_spec], defaults=defaults)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    task = result.tasks["t"]
    assert result.status == RunStatus.SUCCEEDED and task.attempts == 2
    first, second = recorded_argv(argv_file)
    first_session = task.sessions[0].session_id
    assert "The check `test -e t-2.out` failed" in second[-1]
    files = branch_files(repo, task.commit)
    if retry == "continue":
        assert follows(second, ["--resume", first_session])
        assert "write the report" not in second[-1]
        assert {"t-1.out", "t-2.out"} <= files  # the first attempt's work was kept
        assert [s.resumed for s in task.sessions] == [False, True]
    else:
        assert "--resume" not in second and "write the report" in second[-1]
        assert "t-2.out" in files and "t-1.out" not in files  # started from the base
        assert task.sessions[1].session_id != first_session
    # Both attempts' usage counts, the failed one's included.
    assert task.usage.cost_usd == pytest.approx(2 * 0.0125)
    await replay_and_record(client, inp.run_id, ["t"], folder_suffix=f"-retry-{retry or 'fresh'}")


@pytest.mark.parametrize("runner", ["claude", "gemini"])
async def test_a_session_the_agent_no_longer_has_runs_afresh_in_the_kept_worktree(
    runner, client, worker, repo, tmp_path, standins
):
    standins.setenv("STANDIN_FORGET_SESSIONS", "1")
    argv_file, inp, result = await rate_limited_run(
        "lost", runner, client, worker, repo, tmp_path, standins
    )

    task = result.tasks["lost"]
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 1  # no retry used
    limited, resumed, fresh = recorded_argv(argv_file)
    session = task.sessions[0].session_id
    assert follows(resumed, ["--resume", session]) and "--resume" not in fresh
    assert "build the parser" in fresh[-1] and "Continue the task" in resumed[-1]
    # The fresh run worked on in the worktree the limited session left.
    assert {"partial.txt", "lost.out"} <= branch_files(repo, task.commit)
    after = task.sessions[-1]
    assert (after.attempt, after.resumed) == (1, False)
    assert after.lost == f"{runner} has no session {session} to continue"
    events = [json.loads(line) for line in (Path(inp.paths.log_dir) / "run.jsonl").open()]
    assert [e["session"] for e in events if e.get("event") == "session_lost"] == [session]
