"""A run on a URL delivers on its remote: its integration branch is there already, and
`run --pr` and `magsag pr` open, then update, its one pull request."""

import json

from tests.support.cli import magsag
from tests.support.delivery import StandinGh
from tests.support.gitdaemon import bare_remote, refs
from tests.support.runs import bash_plan_file


def test_a_url_run_opens_its_pull_request_on_its_remote(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    plan = bash_plan_file(tmp_path, [{"name": "api", "prompt": "echo api > api.txt"}])
    gh = StandinGh(tmp_path)
    done = magsag("run", plan, "--repo", f"file://{bare}", "--pr", "--json", env=gh.env(cli_env))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pull_request"]["action"] == "created", result["pull_request"]
    [pr] = gh.prs()
    assert refs(bare)[f"refs/heads/{pr['head']}"] == result["integration_commit"]
    again = magsag("pr", result["run_id"], "--json", env=gh.env(cli_env))
    assert json.loads(again.stdout)["action"] == "updated", again.stderr
