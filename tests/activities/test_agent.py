"""run_agent as one attempt: worktree in, checkpoint out, converging when re-run."""

import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from magsag.activities.agent import run_agent
from magsag.activities.process import write_pidfile
from magsag.contracts import constants as C
from magsag.contracts.activities import AgentInput
from magsag.contracts.plan import RunnerSpec
from tests.support.gitrepo import git_out, record_git_calls
from tests.support.runs import parked, worktrees_left

RUN, TASK = "r1", "t1"


def agent_input(repo: Path, tmp_path: Path, script: str, task: str = TASK, **extra) -> AgentInput:
    """An attempt of `task` of run RUN, its worktree under tmp_path/worktrees; `extra`
    fields replace the defaults (base_commit: main)."""
    fields = dict(
        run_id=RUN,
        task=task,
        attempt=1,
        prompt=script,
        runner=RunnerSpec(command=["bash", "-c", "{prompt}"]),
        repo=str(repo),
        branch=f"magsag/{RUN}/tasks/{task}",
        worktree=str(tmp_path / "worktrees" / RUN / task),
        base_commit=git_out(repo, "rev-parse", "main"),
        log_dir=str(tmp_path / "logs"),
        timeout_seconds=60,
    )
    return AgentInput(**(fields | extra))


async def test_an_attempt_goes_from_worktree_to_checkpoint(repo, tmp_path):
    inp = agent_input(repo, tmp_path, "echo hello > hello.txt")
    out = await ActivityEnvironment().run(run_agent, inp)
    assert out.changed_files == ["hello.txt"]
    assert git_out(repo, "rev-parse", inp.branch) == out.commit
    assert "Magsag-Task: t1" in git_out(repo, "log", "-1", "--format=%B", out.commit)
    # Parked for the run's next task (activities/parking.py), not at the task's path.
    assert worktrees_left(repo) == [parked(inp.worktree)] and not Path(inp.worktree).exists()
    assert "hello" not in Path(out.log_path).read_text()  # stdout of echo went to the file
    assert not Path(f"{inp.worktree}.pid").exists()


async def test_a_rerun_after_the_checkpoint_does_not_run_the_agent_again(repo, tmp_path):
    # The worker died after committing but before reporting: the retry must converge
    # on the same commit instead of redoing (and possibly changing) the work.
    runs = tmp_path / "runs.log"
    inp = agent_input(repo, tmp_path, f"echo run >> {runs}; date +%s%N > stamp.txt")
    first = await ActivityEnvironment().run(run_agent, inp)
    second = await ActivityEnvironment().run(run_agent, inp)
    assert second.commit == first.commit
    assert runs.read_text().count("run") == 1
    assert git_out(repo, "rev-list", "--count", f"main..{inp.branch}") == "1"


async def test_an_attempt_kills_the_process_group_an_earlier_attempt_left(repo, tmp_path):
    inp = agent_input(repo, tmp_path, "true")
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        write_pidfile(Path(f"{inp.worktree}.pid"), orphan.pid, attempt=1)
        await ActivityEnvironment().run(run_agent, inp)
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            os.killpg(orphan.pid, signal.SIGKILL)


async def test_an_attempt_kills_what_an_earlier_attempt_left_outside_its_group(repo, tmp_path):
    # A daemon of an attempt whose worker died: its own session, the attempt's marker.
    inp = agent_input(repo, tmp_path, "true")
    env = {**os.environ, "MAGSAG_ATTEMPT_ID": "r1/t1/1/earlier"}
    escaped = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    leader = subprocess.Popen(["true"], start_new_session=True)
    leader.wait()  # the recorded group is gone; only the marker finds the daemon
    try:
        write_pidfile(Path(f"{inp.worktree}.pid"), leader.pid, 1, "r1/t1/1/earlier")
        await ActivityEnvironment().run(run_agent, inp)
        assert escaped.wait(timeout=10) == -signal.SIGKILL
    finally:
        if escaped.poll() is None:
            escaped.kill()


async def test_a_quick_agent_is_not_held_after_it_exits(repo, tmp_path):
    # An agent gone before magsag starts watching for its exit is seen gone at once,
    # not at the next heartbeat.
    for n in range(8):
        inp = agent_input(repo, tmp_path, "echo hi")
        inp = inp.model_copy(update={"task": f"t{n}", "branch": f"magsag/{RUN}/tasks/t{n}"})
        out = await ActivityEnvironment().run(run_agent, inp)
        assert out.duration_seconds < 1.5


async def test_a_missing_executable_is_not_retryable(repo, tmp_path):
    inp = agent_input(repo, tmp_path, "x")
    inp.runner = RunnerSpec(command=["no-such-agent-binary", "{prompt}"])
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(run_agent, inp)
    assert caught.value.non_retryable and caught.value.type == "RunnerNotFound"
    assert "no-such-agent-binary" in str(caught.value)


async def test_a_runner_env_name_missing_on_the_worker_is_not_retryable(repo, tmp_path):
    inp = agent_input(repo, tmp_path, "true")
    inp.runner = RunnerSpec(command=["bash", "-c", "{prompt}"], env=["MAGSAG_TEST_UNSET_VAR"])
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(run_agent, inp)
    assert caught.value.non_retryable and "MAGSAG_TEST_UNSET_VAR" in str(caught.value)


async def test_only_an_attempt_that_outlasts_the_interval_heartbeats(repo, tmp_path, monkeypatch):
    # The server times the heartbeat timeout from the activity's start, and a beat at
    # once would cost it a write for every task (activities/keepalive.py).
    beats = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    await env.run(run_agent, agent_input(repo, tmp_path, "echo hi > a.txt", task="quick"))
    assert beats == []
    monkeypatch.setattr(C, "HEARTBEAT_INTERVAL", timedelta(seconds=0.2))
    await env.run(run_agent, agent_input(repo, tmp_path, "sleep 1; echo hi > b.txt", task="slow"))
    # The agent's beats say which process group it is (the Web UI shows them).
    assert {"pgid", "attempt"} <= set(next(d[0] for d in beats if d))


async def test_a_first_attempt_runs_few_git_commands(repo, tmp_path, monkeypatch):
    # Each git command is 5-20 ms of every task's time (issue 11, the short-task tax):
    # a first attempt needs its branch, worktree, checkpoint commit and removal only.
    inp = agent_input(repo, tmp_path, "echo hello > hello.txt")
    log = record_git_calls(tmp_path, monkeypatch)
    out = await ActivityEnvironment().run(run_agent, inp)
    assert out.changed_files == ["hello.txt"]
    commands = log.read_text().splitlines()
    # 17 before issue 11. Two of these once per worker (where the repository's git dir
    # is, its core.hooksPath); a new worktree's checkout (`reset --hard`) was a child of
    # `git worktree add` until it moved outside the worktree lock (worktree_add.py).
    assert len(commands) <= 12, commands


async def test_a_continued_session_keeps_the_worktree_and_converges_when_rerun(repo, tmp_path):
    # A fresh attempt that stopped part-way, then a run continuing its session: run twice
    # with the same input, as Temporal reruns an attempt whose worker died.
    stopped = agent_input(repo, tmp_path, "echo part > part.txt; exit 1")
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(run_agent, stopped)
    runs = tmp_path / "runs.log"
    script = f"echo run >> {runs}; [ $(wc -l < {runs}) -ge 2 ] && echo rest > rest.txt"
    # The "agent" ignores its prompt (a continue message): the script is its argv.
    runner = RunnerSpec(command=["bash", "-c", script])
    continued = agent_input(repo, tmp_path, "", runner=runner, resume_session="s-1")
    with pytest.raises(ApplicationError):  # its worker "died": the first run fails
        await ActivityEnvironment().run(run_agent, continued)
    out = await ActivityEnvironment().run(run_agent, continued)
    assert sorted(out.changed_files) == ["part.txt", "rest.txt"]
