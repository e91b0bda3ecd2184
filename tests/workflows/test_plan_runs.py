"""Plans run end to end on a real Temporal server, real git repos, real subprocesses."""

import json
from pathlib import Path

import pytest

from magsag.contracts import constants as C
from magsag.contracts.plan_loader import load_plan
from magsag.contracts.run import RunStatus, TaskStatus
from tests.support.gitrepo import git_out, make_repo, user_side
from tests.support.runs import bash_plan, branch_files, run_plan, worktrees_left


async def test_phases_run_in_order_and_dependents_see_their_dependencies(
    client, worker, repo, tmp_path
):
    before = user_side(repo)
    plan = bash_plan(
        tasks=None,
        phases=[
            {"name": "one", "tasks": [
                {"name": "a", "prompt": "echo a > a.txt"},
                {"name": "b", "prompt": "echo b > b.txt"},
            ]},
            {"name": "two", "tasks": [
                # Fails unless both files of phase one were merged before it started.
                {"name": "c", "prompt": "cat a.txt b.txt > c.txt"},
            ]},
        ],
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)

    assert result.status == RunStatus.SUCCEEDED
    assert {t.status for t in result.tasks.values()} == {TaskStatus.SUCCEEDED}
    branch = C.integration_branch(inp.run_id)
    assert result.integration_commit == git_out(repo, "rev-parse", branch)
    assert {"a.txt", "b.txt", "c.txt"} <= branch_files(repo, branch)
    assert git_out(repo, "show", f"{branch}:c.txt") == "a\nb"
    for task in result.tasks.values():
        # Each checkpoint is on the integration branch, with magsag's trailers.
        git_out(repo, "merge-base", "--is-ancestor", task.commit, branch)
        message = git_out(repo, "log", "-1", "--format=%B", task.commit)
        assert f"{C.TRAILER_RUN}: {inp.run_id}" in message
        assert f"{C.TRAILER_TASK}: {task.name}" in message
        assert task.attempts == 1 and task.started_at <= task.finished_at
    assert worktrees_left(repo) == []
    assert user_side(repo) == before  # base branch and the user's checkout untouched


async def test_a_sequential_phase_chains_its_tasks(client, worker, repo, tmp_path):
    plan = bash_plan(
        tasks=None,
        phases=[{"name": "steps", "parallel": False, "tasks": [
            {"name": "first", "prompt": "echo 1 > step.txt"},
            {"name": "second", "prompt": "test \"$(cat step.txt)\" = 1 && echo 2 > step.txt"},
            {"name": "third", "prompt": "test \"$(cat step.txt)\" = 2 && echo 3 > step.txt"},
        ]}],
    )  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    assert git_out(repo, "show", f"{C.integration_branch(inp.run_id)}:step.txt") == "3"


def _max_overlap(log: Path) -> int:
    events = sorted(
        (float(stamp), 1 if kind == "+" else -1)
        for kind, stamp in (line.split() for line in log.read_text().splitlines())
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


async def test_concurrency_cap_is_reached_and_never_exceeded(client, worker, repo, tmp_path):
    log = tmp_path / "overlap.log"
    script = f'echo "+ $(date +%s.%N)" >> {log}; sleep 1.5; echo "- $(date +%s.%N)" >> {log}'
    plan = bash_plan([{"name": f"t{i}", "prompt": script} for i in range(7)])
    _, result = await run_plan(client, plan, repo, tmp_path, worker, concurrency=3)
    assert result.status == RunStatus.SUCCEEDED
    assert _max_overlap(log) == 3


async def test_ready_tasks_start_by_priority_then_plan_order(client, worker, repo, tmp_path):
    order = tmp_path / "order.log"
    plan = bash_plan(
        [
            {"name": name, "prompt": f"echo {name} >> {order}", "priority": priority}
            for name, priority in [("low", 0), ("high", 5), ("mid", 1), ("low2", 0)]
        ],
        concurrency=1,
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    assert order.read_text().split() == ["high", "mid", "low", "low2"]


async def test_a_task_that_changes_nothing_succeeds_without_a_commit(
    client, worker, repo, tmp_path
):
    plan = bash_plan([{"name": "noop", "prompt": "true"}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    assert result.tasks["noop"].commit is None
    assert result.integration_commit == git_out(repo, "rev-parse", "main")


# Examples whose runners are plain commands run here; agent examples need accounts (they
# are validated in tests/contracts and their runners tested with stand-ins).
EXAMPLES = [
    path
    for path in sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    if all(r.kind == "command" for r in load_plan(path).runners.values())
]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
async def test_every_command_example_plan_runs(path, client, worker, tmp_path):
    repo = make_repo(tmp_path / "repo")
    inp, result = await run_plan(client, load_plan(path), repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED, result.tasks


REPORT_SCRIPT = """
import json, os, sys
keys = ["MAGSAG_RUN_ID", "MAGSAG_TASK", "MAGSAG_ATTEMPT", "MAGSAG_WORKTREE", "MAGSAG_PROMPT"]
report = {"argv": sys.argv[1:], "stdin": sys.stdin.read(), "cwd": os.getcwd()}
report.update({key: os.environ.get(key) for key in keys})
open("report.json", "w").write(json.dumps(report))
"""


async def test_the_command_runner_passes_the_prompt_safely_and_sets_the_env(
    client, worker, repo, tmp_path
):
    prompt = "fix it; rm -rf / $(whoami) `id` 'quoted'"
    plan = bash_plan(
        [{"name": "report", "prompt": prompt, "runner": "py"}],
        runners={"py": {"command": ["python3", "-c", REPORT_SCRIPT, "{prompt}", "--flag"]}},
    )
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    report = json.loads(git_out(repo, "show", f"{C.integration_branch(inp.run_id)}:report.json"))
    worktree = str(tmp_path / "worktrees" / inp.run_id / "report")
    assert report == {
        "argv": [prompt, "--flag"],  # one argv element, never through a shell
        "stdin": prompt,
        "cwd": worktree,
        "MAGSAG_RUN_ID": inp.run_id,
        "MAGSAG_TASK": "report",
        "MAGSAG_ATTEMPT": "1",
        "MAGSAG_WORKTREE": worktree,
        "MAGSAG_PROMPT": prompt,
    }
    log = Path(inp.paths.log_dir) / "report.attempt-1.log"
    assert log.exists()


async def test_a_runners_max_parallel_holds_beside_the_global_cap(client, worker, repo, tmp_path):
    capped_log, free_log = tmp_path / "capped.log", tmp_path / "free.log"

    def script(log):
        return f'echo "+ $(date +%s.%N)" >> {log}; sleep 1; echo "- $(date +%s.%N)" >> {log}'

    plan = bash_plan(
        [{"name": f"c{i}", "prompt": "x", "runner": "capped"} for i in range(3)]
        + [{"name": f"f{i}", "prompt": "x", "runner": "free"} for i in range(2)],
        runners={
            "capped": {"command": ["bash", "-c", script(capped_log)], "max_parallel": 1},
            "free": {"command": ["bash", "-c", script(free_log)]},
        },
        concurrency=4,
    )
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    assert _max_overlap(capped_log) == 1
    assert _max_overlap(free_log) == 2
