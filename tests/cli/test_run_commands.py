"""`magsag run`, `status`, `worker` and `demo` as a user calls them."""

import json
import signal
import subprocess
from pathlib import Path

import pytest

from magsag.contracts.plan_loader import parse_plan
from magsag.contracts.run import RunInput, RunPaths, TaskInput
from magsag.workflows.texts import task_details
from tests.support.cli import MAGSAG, magsag, magsag_json
from tests.support.gitrepo import commit_file, git_out, make_repo
from tests.support.poll import eventually, wait_for

PLAN = """
name: cli-plan
runners:
  sh: {command: [bash, -c, '{prompt}']}
tasks:
  - {name: one, prompt: "echo 1 > one.txt"}
  - {name: two, prompt: "echo 2 > two.txt"}
  - {name: both, prompt: "cat one.txt two.txt > both.txt", depends_on: [one, two]}
"""

TASK_KEYS = {"status", "commit", "attempts", "started_at", "finished_at", "error"}


@pytest.fixture
def plan_file(tmp_path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_run_waits_and_reports_the_result_as_json(plan_file, repo, cli_env):
    done = magsag("run", plan_file, "--repo", repo, "--json", env=cli_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert {"run_id", "status", "integration_branch", "integration_commit", "tasks"} <= set(result)
    assert set(result["tasks"]) == {"one", "two", "both"}
    assert all(TASK_KEYS <= set(task) for task in result["tasks"].values())
    branch = result["integration_branch"]
    assert branch == f"magsag/{result['run_id']}/integration"
    assert git_out(repo, "rev-parse", branch) == result["integration_commit"]
    assert git_out(repo, "show", f"{branch}:both.txt") == "1\n2"
    # No worker was polling, so the CLI ran one itself and said so; progress went by.
    assert "running one in this process" in done.stderr
    assert "both" in done.stderr and "succeeded" in done.stderr
    assert not list((Path(cli_env["MAGSAG_STATE_DIR"]) / "worktrees").glob("*/*"))
    # The agent's output went to a log file under the state directory.
    logs = Path(cli_env["MAGSAG_STATE_DIR"]) / "runs" / result["run_id"]
    assert sorted(p.name for p in logs.iterdir()) == [
        "both.attempt-1.log", "one.attempt-1.log", "run.jsonl", "two.attempt-1.log"
    ]  # fmt: skip


def test_run_exits_1_when_the_run_fails(tmp_path, repo, cli_env):
    plan = tmp_path / "fail.yaml"
    plan.write_text("runners: {sh: {command: [bash, -c, '{prompt}']}}\n"
                    "tasks: [{name: bad, prompt: 'exit 4'}]\n")  # fmt: skip
    (repo / "README.md").write_text("uncommitted edit\n")
    done = magsag("run", plan, "--repo", repo, env=cli_env)
    assert done.returncode == 1
    assert "failed" in done.stdout and "exited with code 4" in done.stderr
    assert "uncommitted changes in" in done.stderr  # the run starts from commits only
    assert (repo / "README.md").read_text() == "uncommitted edit\n"  # and leaves them be
    # The worker it hosted logs to a file, not into the command's output.
    assert "Traceback" not in done.stderr and "Completing activity" not in done.stderr
    worker_log = Path(cli_env["MAGSAG_STATE_DIR"], "worker.log").read_text()
    assert "activity=run_agent" in worker_log and "exited with code 4" in worker_log


def _mid_merge(repo: Path) -> Path:
    """Leave the repository in a merge with a conflict, as a user might."""
    git_out(repo, "checkout", "-q", "-b", "other")
    commit_file(repo, "README.md", "other\n", "other side")
    git_out(repo, "checkout", "-q", "main")
    commit_file(repo, "README.md", "main\n", "main side")
    subprocess.run(["git", "merge", "other"], cwd=repo, capture_output=True)
    assert (repo / ".git" / "MERGE_HEAD").exists()
    return repo


def _linked_mid_merge(tmp_path: Path, repo: Path) -> Path:
    """A linked worktree of the repository in a merge: its .git is a file naming its git
    dir, where MERGE_HEAD is."""
    linked = tmp_path / "linked"
    git_out(repo, "worktree", "add", "-q", "-b", "side-a", str(linked))
    commit_file(linked, "README.md", "a\n", "a side")
    git_out(linked, "checkout", "-q", "-b", "side-b", "HEAD~1")
    commit_file(linked, "README.md", "b\n", "b side")
    subprocess.run(["git", "merge", "side-a"], cwd=linked, capture_output=True)
    assert (repo / ".git" / "worktrees" / "linked" / "MERGE_HEAD").exists()
    return linked


def _detached(repo: Path) -> Path:
    git_out(repo, "checkout", "-q", "--detach")
    return repo


def _bare(tmp_path: Path) -> Path:
    git_out(tmp_path, "init", "-q", "--bare", str(tmp_path / "bare.git"))
    return tmp_path / "bare.git"


def _plain_dir(tmp_path: Path) -> Path:
    (tmp_path / "plain").mkdir()
    return tmp_path / "plain"


# Each case: (arguments after the plan, built from tmp_path and the repo; expected text).
BAD_INPUTS = {
    "not-a-repo": (lambda t, r: ["--repo", _plain_dir(t)], "not a git repository"),
    "missing-repo": (lambda t, r: ["--repo", t / "nowhere"], "no such directory"),
    "bare-repo": (lambda t, r: ["--repo", _bare(t)], "bare repository"),
    "missing-base": (lambda t, r: ["--repo", r, "--base", "nope"], "--base nope: no such"),
    "worktrees-in-repo": (
        lambda t, r: ["--repo", r, "--worktree-root", r / "wt"],
        "inside the repository's tree",
    ),
    "concurrency": (lambda t, r: ["--repo", r, "--concurrency", "0"], "--concurrency 0: must"),
    "merge-in-progress": (lambda t, r: ["--repo", _mid_merge(r)], "a merge is in progress"),
    "merge-in-a-linked-worktree": (
        lambda t, r: ["--repo", _linked_mid_merge(t, r)],
        "a merge is in progress",
    ),
    "detached-head": (lambda t, r: ["--repo", _detached(r)], "HEAD is detached"),
    "repo-subdirectory": (lambda t, r: ["--repo", r / "src"], "not the top of its repository"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
async def test_bad_input_exits_2_and_creates_nothing(case, tmp_path, plan_file, client, cli_env):
    repo = make_repo(tmp_path / "repo")
    make_args, expected = BAD_INPUTS[case]
    args = make_args(tmp_path, repo)
    refs_before = git_out(repo, "for-each-ref")
    done = magsag("run", plan_file, *args, env=cli_env)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert git_out(repo, "for-each-ref") == refs_before
    assert not Path(cli_env["MAGSAG_STATE_DIR"]).exists()
    count = await client.count_workflows(f'MagsagRepo = "{repo}"')
    assert count.count == 0


def test_a_missing_plan_file_exits_2(tmp_path, repo, cli_env):
    done = magsag("run", tmp_path / "absent.yaml", "--repo", repo, env=cli_env)
    assert done.returncode == 2 and "plan file not found" in done.stderr


def test_detach_returns_the_run_id_and_a_worker_completes_it(plan_file, repo, cli_env):
    started = magsag_json("run", plan_file, "--repo", repo, "--detach", env=cli_env)
    run_id = started["run_id"]
    pending = magsag_json("status", run_id, env=cli_env)
    assert pending["status"] == "running"

    worker = subprocess.Popen([MAGSAG, "worker"], env=cli_env, stderr=subprocess.PIPE, text=True)
    try:
        final = wait_for(
            lambda: (s := magsag_json("status", run_id, env=cli_env))["status"] != "running" and s,
            timeout=90,
            what="the detached run to finish",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert final["status"] == "succeeded"
    assert {t["status"] for t in final["tasks"].values()} == {"succeeded"}
    assert worker.returncode == 0


def test_watch_on_another_host_waits_for_the_worker_of_the_runs_host(
    plan_file, repo, cli_env, procs, tmp_path
):
    """A run on host A's repository runs on A's worker alone: `watch` on host B says so
    and follows the run instead of running a worker that could never take its steps."""
    host_a = dict(cli_env, MAGSAG_HOST=f"{cli_env['MAGSAG_HOST']}-a")
    host_b = dict(cli_env, MAGSAG_HOST=f"{cli_env['MAGSAG_HOST']}-b")
    run_id = magsag_json("run", plan_file, "--repo", repo, "--detach", env=host_a)["run_id"]
    watch = procs.start_with(host_b, "watch", run_id, name="watch-b")
    log = tmp_path / "watch-b.log"
    wait_for(lambda: "start `magsag worker` on that host" in log.read_text(), what="the note")
    assert f"magsag-host-{host_a['MAGSAG_HOST']}" in log.read_text()
    procs.start_with(host_a, "worker", name="worker-a")
    assert watch.wait(timeout=120) == 0, log.read_text()
    assert "running one in this process" not in log.read_text()


def test_status_of_an_unknown_run_exits_2(cli_env):
    done = magsag("status", "no-such-run", env=cli_env)
    assert done.returncode == 2 and "unknown run id no-such-run" in done.stderr


def test_demo_runs_a_three_phase_plan_and_shows_the_integration_branch(cli_env):
    done = magsag("demo", env={**cli_env, "MAGSAG_DEMO_THINK_SECONDS": "0.2"}, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "run demo-" in done.stdout and "succeeded: 6 succeeded" in done.stdout
    for subject in ("magsag: changelog", "magsag: integrate", "seed"):
        assert subject in done.stdout


PROVIDER_PLAN = """
runners:
  first: {command: [bash, -c, "echo first > ran-by.txt"]}
  second: {command: [bash, -c, "echo second > ran-by.txt"]}
provider_map: {backend: first}
tasks:
  - {name: api, agent: backend, task: "build the api"}
"""


def test_provider_map_moves_a_category_to_another_runner_without_edits(tmp_path, repo, cli_env):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PROVIDER_PLAN)
    by_plan = magsag_json("run", plan, "--repo", repo, env=cli_env)
    moved = magsag_json("run", plan, "--repo", repo, "--provider-map", "backend=second",
                        env=cli_env)  # fmt: skip
    assert git_out(repo, "show", f"{by_plan['integration_branch']}:ran-by.txt") == "first"
    assert git_out(repo, "show", f"{moved['integration_branch']}:ran-by.txt") == "second"
    bad = magsag("run", plan, "--repo", repo, "--provider-map", "backend", env=cli_env)
    assert bad.returncode == 2 and "write CATEGORY=RUNNER" in bad.stderr
    unknown = magsag("run", plan, "--repo", repo, "--provider-map", "backend=gpt", env=cli_env)
    assert unknown.returncode == 2 and "backend=gpt: unknown runner" in unknown.stderr


def test_run_shows_agent_cost_and_exits_1_past_the_budget(tmp_path, repo, cli_env):
    standins = Path(__file__).parents[1] / "runners" / "standins"
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "runners: {claude: {kind: claude}}\n"
        "tasks: [{name: a, prompt: x}, {name: b, prompt: y, depends_on: [a]}]\n"
    )
    env = {**cli_env, "PATH": f"{standins}:{cli_env['PATH']}", "STANDIN_WRITE": "{task}.md"}
    done = magsag("run", plan, "--repo", repo, "--max-cost", "0.01", env=env)
    assert done.returncode == 1
    assert "budget_exceeded: 1 skipped, 1 succeeded" in done.stdout
    assert "usage: $0.0125, 110 in / 50 out tokens" in done.stdout
    bad = magsag("run", plan, "--repo", repo, "--max-cost", "0", env=env)
    assert bad.returncode == 2 and "--max-cost 0.0: must be more than 0" in bad.stderr


async def test_runs_are_found_by_search_attributes_with_readable_summaries(
    plan_file, repo, cli_env, client
):
    result = magsag_json("run", plan_file, "--repo", repo, env=cli_env)
    query = (
        f'MagsagRepo = "{repo}" AND MagsagRunStatus = "succeeded" AND MagsagTasksDone = 3 '
        "AND MagsagTasksFailed = 0"
    )
    found = await eventually(lambda: _ids(client, query), timeout=30, what="the run in visibility")
    assert found == [f"magsag-{result['run_id']}"]
    handle = client.get_workflow_handle(f"magsag-{result['run_id']}")
    description = await handle.describe()
    attributes = {k.name: v for k, v in description.typed_search_attributes}
    assert attributes["MagsagPlan"] == "cli-plan" and attributes["MagsagCostUsd"] == 0.0
    assert attributes["MagsagWaiting"] == ""
    assert "magsag run of plan 'cli-plan'" in await description.static_summary()
    assert "integration branch: magsag/" in await description.static_details()
    child_handle = client.get_workflow_handle(f"magsag-{result['run_id']}/both")
    child = await child_handle.describe()
    assert (await child.static_summary()).startswith("both: cat one.txt two.txt")
    assert "**depends on**: one, two" in await child.static_details()
    # Its workflow's input leaves the dependencies out (the plan workflow waits for them).
    started = (await child_handle.fetch_history()).events[0]
    payloads = started.workflow_execution_started_event_attributes.input.payloads
    [task_input] = await client.data_converter.decode(payloads, [TaskInput])
    assert task_input.task.name == "both" and task_input.task.depends_on == []


def test_a_task_of_a_large_phase_lists_the_first_of_its_dependencies():
    phases = [
        {"name": "one", "tasks": [{"name": f"a{i:02d}", "prompt": "x"} for i in range(25)]},
        {"name": "two", "tasks": [{"name": "b", "prompt": "y"}]},
    ]
    plan = parse_plan({"runners": {"sh": {"command": ["true"]}}, "defaults": {"runner": "sh"},
                       "phases": phases}, "p.yaml")  # fmt: skip
    inp = RunInput(
        run_id="r", plan=plan, base="main", base_commit="c" * 40, host_queue="h",
        paths=RunPaths(repo="/r", worktree_root="/w", log_dir="/l"), concurrency=2,
    )  # fmt: skip
    shown = ", ".join(f"a{i:02d}" for i in range(20))
    assert f"**depends on**: {shown} and 5 more" in task_details(inp, plan.task("b"))


async def _ids(client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]
