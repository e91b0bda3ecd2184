"""Runs on a URL through retries, resume and cancel: what each attempt made is on the
remote, and the remote's branches only move forward."""

import json
from pathlib import Path

from tests.support.cli import magsag, magsag_json
from tests.support.gitdaemon import bare_remote, refs
from tests.support.gitrepo import git_out
from tests.support.poll import eventually
from tests.support.runs import bash_plan_file

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_resume_of_a_url_run_goes_on_from_its_integration_branch_on_the_remote(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    fixed = tmp_path / "fixed"
    tasks = [{"name": "first", "prompt": "echo 1 > first.txt"},
             {"name": "flaky", "prompt": f"test -e {fixed} && echo 2 > flaky.txt",
              "depends_on": ["first"]}]  # fmt: skip
    plan = bash_plan_file(tmp_path, tasks)
    failed = magsag_json("run", plan, "--repo", f"file://{bare}", env=cli_env)
    assert failed["status"] == "failed"

    fixed.touch()
    done = magsag("resume", failed["run_id"], "--json", env=cli_env)
    resumed = json.loads(done.stdout)
    assert resumed["status"] == "succeeded", done.stderr
    assert resumed["tasks"]["first"]["attempts"] == failed["tasks"]["first"]["attempts"]  # kept
    tip = refs(bare)[f"refs/heads/magsag/{resumed['run_id']}/integration"]
    assert tip == resumed["integration_commit"]
    assert git_out(bare, "show", f"{tip}:first.txt") == "1"
    assert git_out(bare, "show", f"{tip}:flaky.txt") == "2"


def test_a_retry_after_a_pushed_wip_fast_forwards_the_remote_task_branch(tmp_path, cli_env):
    # Attempt 1 fails and its WIP is pushed; attempt 2 starts from the base again and its
    # checkpoint keeps the WIP as a parent, so the remote's branch only moves forward.
    bare = bare_remote(tmp_path / "served")
    script = '[ "$MAGSAG_ATTEMPT" = 2 ] && echo good > good.txt || { echo x > wip.txt; exit 1; }'
    plan = bash_plan_file(tmp_path, [{"name": "flaky", "prompt": script, "retries": 1}])
    result = magsag_json("run", plan, "--repo", f"file://{bare}", env=cli_env)
    task = result["tasks"]["flaky"]
    assert result["status"] == "succeeded" and task["attempts"] == 2
    branch = f"refs/heads/magsag/{result['run_id']}/tasks/flaky"
    assert refs(bare)[branch] == task["commit"]
    base, wip = git_out(bare, "show", "-s", "--format=%P", task["commit"]).split()
    assert git_out(bare, "show", "-s", "--format=%s", wip).startswith("WIP: ")
    assert git_out(bare, "show", f"{wip}:wip.txt") == "x"  # the failed attempt's work, kept
    tip = result["integration_commit"]
    files = git_out(bare, "ls-tree", "--name-only", tip).split()
    assert "good.txt" in files and "wip.txt" not in files  # what merged is attempt 2's


async def test_a_cancelled_url_run_pushes_its_partial_work(tmp_path, cli_env, procs):
    bare = bare_remote(tmp_path / "served")
    started = tmp_path / "started"
    script = f"echo half > half.txt; touch {started}; sleep 60"
    plan = bash_plan_file(tmp_path, [{"name": "slow", "prompt": script}])
    procs.start("worker", name="worker")
    run = magsag("run", plan, "--repo", f"file://{bare}", "--detach", env=cli_env)
    run_id = run.stdout.strip()
    await eventually(started.exists, timeout=60, what="the agent to start")
    assert magsag("cancel", run_id, env=cli_env).returncode == 0

    def ended():
        shown = json.loads(magsag("status", run_id, "--json", env=cli_env).stdout)
        return shown if shown["status"] != "running" else None

    result = await eventually(ended, timeout=60, interval=0.5, what="the run to end")
    task = result["tasks"]["slow"]
    assert result["status"] == "cancelled" and task["status"] == "cancelled"
    assert refs(bare)[f"refs/heads/magsag/{run_id}/tasks/slow"] == task["commit"]
    assert git_out(bare, "show", f"{task['commit']}:half.txt") == "half"


def test_best_of_n_on_a_url_run_pushes_every_candidate_and_merges_the_judges_pick(
    tmp_path, cli_env
):
    bare = bare_remote(tmp_path / "served")
    done = magsag("run", EXAMPLES / "best-of.yaml", "--repo", f"file://{bare}", "--json",
                  env=cli_env)  # fmt: skip
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded", done.stderr
    task = result["tasks"]["greeting"]
    [winner] = [c for c in task["candidates"] if c["won"]]
    assert winner["number"] == 3  # the judge prefers the longest script
    on_remote = refs(bare, f"refs/heads/magsag/{result['run_id']}/tasks/")
    for candidate in task["candidates"]:  # every candidate's work is on the remote
        assert on_remote[f"refs/heads/{candidate['branch']}"] == candidate["commit"]
    assert on_remote[f"refs/heads/magsag/{result['run_id']}/tasks/greeting"] == winner["commit"]
    hello = git_out(bare, "show", f"{result['integration_commit']}:src/hello.py")
    assert hello.count("hello") == 3


def test_a_conflict_on_a_url_run_is_resolved_and_the_merge_pushed(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    plan = EXAMPLES / "resolve-conflicts.yaml"
    done = magsag("run", plan, "--repo", f"file://{bare}", "--json", env=cli_env)
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded", done.stderr
    [resolved] = [t for t in result["tasks"].values() if t.get("resolved_conflict")]
    on_remote = refs(bare, f"refs/heads/magsag/{result['run_id']}/")
    resolution = on_remote[
        f"refs/heads/magsag/{result['run_id']}/tasks/{resolved['name']}--resolve"
    ]
    tip = result["integration_commit"]
    assert on_remote[f"refs/heads/magsag/{result['run_id']}/integration"] == tip
    assert git_out(bare, "merge-base", "--is-ancestor", resolution, tip) == ""
    readme = git_out(bare, "show", f"{tip}:README.md")
    assert "- alpha" in readme and "- beta" in readme and "<<<<<<<" not in readme


def test_a_failed_candidates_wip_is_pushed_to_its_own_branch(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    script = '[ "$MAGSAG_CANDIDATE" = 1 ] && { echo half > half.txt; exit 1; }; echo ok > ok.txt'
    plan = bash_plan_file(tmp_path, [{"name": "pick", "prompt": script, "candidates": 2}])
    result = magsag_json("run", plan, "--repo", f"file://{bare}", env=cli_env)
    assert result["status"] == "succeeded"
    failed, won = sorted(result["tasks"]["pick"]["candidates"], key=lambda c: c["number"])
    assert won["won"] and not failed["won"]
    pushed = refs(bare)[f"refs/heads/{failed['branch']}"]
    assert pushed == failed["commit"]
    assert git_out(bare, "show", f"{pushed}:half.txt") == "half"
