"""Failures: retries, Definition of Done, timeouts, conflicts; no work is ever lost."""

from magsag.contracts import constants as C
from magsag.contracts.run import RunStatus, TaskStatus
from tests.support.gitrepo import git_out
from tests.support.processes import pid_alive
from tests.support.runs import bash_plan, branch_files, run_plan, worktrees_left


async def test_a_retried_attempt_starts_from_the_base_commit(client, worker, repo, tmp_path):
    # Attempt 1 leaves debris and fails; attempt 2 must not see it.
    script = (
        'if [ "$MAGSAG_ATTEMPT" = 1 ]; then echo junk > debris.txt; exit 3; fi; '
        "test ! -e debris.txt && echo ok > result.txt"
    )
    plan = bash_plan([{"name": "flaky", "prompt": script, "retries": 2}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["flaky"]
    assert (result.status, task.status, task.attempts) == (RunStatus.SUCCEEDED, "succeeded", 2)
    files = branch_files(repo, C.integration_branch(inp.run_id))
    assert "result.txt" in files and "debris.txt" not in files


async def test_retries_then_failure_keeps_partial_work_as_wip(client, worker, repo, tmp_path):
    counter = tmp_path / "attempts.log"
    plan = bash_plan(
        [
            {
                "name": "broken",
                "prompt": f"echo x >> {counter}; echo half > partial.txt; echo boom >&2; exit 1",
                "retries": 1,
            },
            {"name": "after", "prompt": "echo never > after.txt", "depends_on": ["broken"]},
        ]
    )
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    broken = result.tasks["broken"]
    assert result.status == RunStatus.FAILED
    assert broken.status == TaskStatus.FAILED and broken.attempts == 2
    assert len(counter.read_text().split()) == 2
    assert "exited with code 1" in broken.error and "boom" in broken.error
    assert result.tasks["after"].status == TaskStatus.SKIPPED
    # The partial work of the last attempt is a WIP commit on the task branch.
    branch = C.task_branch(inp.run_id, "broken")
    assert git_out(repo, "show", f"{branch}:partial.txt") == "half"
    assert git_out(repo, "log", "-1", "--format=%s", branch).startswith("WIP")
    assert broken.commit == git_out(repo, "rev-parse", branch)
    # ...and not on the integration branch.
    assert "partial.txt" not in branch_files(repo, C.integration_branch(inp.run_id))
    assert worktrees_left(repo) == []


async def test_a_critical_failure_stops_new_tasks(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "fails", "prompt": "exit 1", "priority": 1},
            {"name": "independent", "prompt": "echo hi > hi.txt"},
        ],
        concurrency=1,
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.FAILED
    assert result.tasks["fails"].status == TaskStatus.FAILED
    assert result.tasks["independent"].status == TaskStatus.SKIPPED


async def test_a_non_critical_failure_lets_the_run_succeed(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "optional", "prompt": "exit 1", "critical": False, "priority": 1},
            {"name": "needs-optional", "prompt": "true", "depends_on": ["optional"]},
            {"name": "independent", "prompt": "echo hi > hi.txt"},
        ],
        concurrency=1,
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    statuses = {name: t.status for name, t in result.tasks.items()}
    assert statuses == {
        "optional": TaskStatus.FAILED,
        "needs-optional": TaskStatus.SKIPPED,
        "independent": TaskStatus.SUCCEEDED,
    }


async def test_checks_and_outputs_are_the_definition_of_done(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "checked", "prompt": "echo 1 > n.txt", "checks": ["grep -q 2 n.txt"]},
            {"name": "no-output", "prompt": "true", "outputs": ["report.md"]},
            {"name": "good", "prompt": "echo 2 > n2.txt", "checks": ["grep -q 2 n2.txt"],
             "outputs": ["n2.txt"], "critical": False},
        ],
        concurrency=3,
    )  # fmt: skip
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert "check failed (exit 1): grep -q 2 n.txt" in result.tasks["checked"].error
    assert "expected output missing: report.md" in result.tasks["no-output"].error
    assert result.tasks["good"].status == TaskStatus.SUCCEEDED


async def test_a_timeout_kills_the_agents_whole_process_group(client, worker, repo, tmp_path):
    pidfile = tmp_path / "child.pid"
    # The agent starts a grandchild that would outlive a naive kill of the agent.
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    plan = bash_plan([{"name": "slow", "prompt": script, "timeout": "2s"}])
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.tasks["slow"].status == TaskStatus.FAILED
    assert "timed out after 2s" in result.tasks["slow"].error
    grandchild = int(pidfile.read_text())
    assert not pid_alive(grandchild)
    assert worktrees_left(repo) == []


async def test_a_merge_conflict_marks_the_task_and_keeps_its_branch(client, worker, repo, tmp_path):
    plan = bash_plan(
        [
            {"name": "left", "prompt": "echo left > README.md"},
            {"name": "right", "prompt": "sleep 1; echo right > README.md"},
            {"name": "after-right", "prompt": "true", "depends_on": ["right"]},
        ],
        concurrency=2,
    )
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    right = result.tasks["right"]
    assert result.status == RunStatus.FAILED
    assert result.tasks["left"].status == TaskStatus.SUCCEEDED
    assert right.status == TaskStatus.CONFLICTED
    assert right.conflict_files == ["README.md"]
    assert result.tasks["after-right"].status == TaskStatus.SKIPPED
    integration = C.integration_branch(inp.run_id)
    assert git_out(repo, "show", f"{integration}:README.md") == "left"
    assert git_out(repo, "show", f"{C.task_branch(inp.run_id, 'right')}:README.md") == "right"
    assert worktrees_left(repo) == []


async def test_the_next_attempt_is_told_which_check_failed_and_how(client, worker, repo, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    # A scripted agent that only gets it right when its prompt says what the check wants.
    agent = tmp_path / "agent.sh"
    agent.write_text(
        f'printf "%s" "$MAGSAG_PROMPT" > {prompts}/$MAGSAG_ATTEMPT\n'
        'case "$MAGSAG_PROMPT" in *"want=42"*) echo 42 > n.txt;; *) echo 0 > n.txt;; esac\n'
    )
    check = 'grep -q 42 n.txt || { echo "want=42 got=$(cat n.txt)"; exit 1; }'
    plan = bash_plan(
        [{"name": "learns", "prompt": "Write the number.", "runner": "agent",
          "checks": [check], "retries": 1}],
        runners={"agent": {"command": ["bash", str(agent)]}},
    )  # fmt: skip
    _, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.tasks["learns"].status == TaskStatus.SUCCEEDED
    assert result.tasks["learns"].attempts == 2
    assert (prompts / "1").read_text() == "Write the number."
    second = (prompts / "2").read_text()
    assert second.startswith("Write the number.")  # the task's own prompt comes first
    assert f"The check `{check}` failed (exit 1)" in second
    assert "want=42 got=0" in second


async def test_a_spent_budget_starts_nothing_new_and_says_so(client, worker, repo, tmp_path):
    plan = bash_plan(
        [{"name": f"t{i}", "prompt": f"echo {i} > t{i}.txt"} for i in range(4)],
        concurrency=1,
        budget={"max_attempts": 2},
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == "budget_exceeded"
    statuses = [result.tasks[f"t{i}"].status for i in range(4)]
    assert statuses == ["succeeded", "succeeded", "skipped", "skipped"]
