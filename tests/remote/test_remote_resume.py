"""`magsag resume` of a run on a URL: the new run starts from the old run's integration
branch as the remote has it, and runs only what did not succeed."""

import json

from tests.support.cli import magsag
from tests.support.gitdaemon import bare_remote, refs
from tests.support.gitrepo import git_out
from tests.support.runs import bash_plan_file


def test_resume_of_a_url_run_goes_on_from_its_integration_branch_on_the_remote(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    fixed = tmp_path / "fixed"
    tasks = [{"name": "first", "prompt": "echo 1 > first.txt"},
             {"name": "flaky", "prompt": f"test -e {fixed} && echo 2 > flaky.txt",
              "depends_on": ["first"]}]  # fmt: skip
    plan = bash_plan_file(tmp_path, tasks)
    failed = json.loads(
        magsag("run", plan, "--repo", f"file://{bare}", "--json", env=cli_env).stdout
    )
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
