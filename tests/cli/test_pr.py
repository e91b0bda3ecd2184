"""`magsag pr`: the run's integration branch pushed and one pull request opened, then
updated, through `gh` (a stand-in on PATH) with a body that tells the run."""

import json
from pathlib import Path

import pytest

from magsag.history import run_log
from tests.support.cli import magsag
from tests.support.delivery import StandinGh, bare_origin, path_without_gh
from tests.support.gitrepo import commit_file, git_out, make_repo
from tests.support.runs import bash_plan, bash_plan_file, run_plan

TASKS = [
    {"name": "api", "prompt": "echo api > api.txt", "checks": ["test -f api.txt"]},
    {"name": "broken", "prompt": "exit 3", "critical": False},
    {"name": "after", "prompt": "true", "depends_on": ["broken"], "critical": False},
]


@pytest.fixture
async def ended_run(client, worker, repo, tmp_path):
    """A run that succeeded with one failed and one skipped non-critical task, its
    repository with a bare repository as origin."""
    remote = bare_origin(repo, tmp_path)
    inp, result = await run_plan(client, bash_plan(TASKS), repo, tmp_path, worker)
    assert result.status.value == "succeeded"
    return inp, result, remote


async def test_pr_opens_one_pull_request_then_updates_it(ended_run, cli_env, tmp_path):
    inp, result, remote = ended_run
    gh = StandinGh(tmp_path)
    env = gh.env(cli_env)

    first = magsag("pr", inp.run_id, "--draft", "--json", env=env)
    assert first.returncode == 0, first.stderr
    opened = json.loads(first.stdout)
    assert opened["action"] == "created" and opened["pushed"] is True
    assert opened["url"] == "https://github.com/acme/widgets/pull/1" and opened["number"] == 1
    branch = result.integration_branch
    assert git_out(remote, "rev-parse", branch) == result.integration_commit
    [pr] = gh.prs()
    assert (pr["head"], pr["base"], pr["draft"]) == (branch, "main", True)
    assert pr["title"] == f"magsag: test ({inp.run_id})"
    body = pr["body"]
    assert f"magsag run `{inp.run_id}` of plan `test`" in body
    assert "| `api` | ✅ succeeded | 1 | 1/1 |" in body
    assert "- `broken` failed: " in body and "- `after` skipped" in body
    assert (Path(inp.paths.log_dir) / "pull-request.md").read_text() == body

    again = magsag("pr", inp.run_id, "--title", "Ship the API", env=env)
    assert again.returncode == 0, again.stderr
    assert "pull request updated: https://github.com/acme/widgets/pull/1" in again.stderr
    [pr] = gh.prs()  # still one
    assert pr["title"] == "Ship the API" and pr["body"] == body
    verbs = [call[:2] for call in gh.calls() if call[0] == "pr"]
    assert verbs == [["pr", "list"], ["pr", "create"], ["pr", "list"], ["pr", "edit"]]
    logged = [e for e in run_log.read(inp.paths.log_dir) if e["event"] == "pull_request"]
    assert [e["action"] for e in logged] == ["created", "updated"]


async def test_pr_without_gh_still_pushes_and_says_what_to_install(ended_run, cli_env, tmp_path):
    inp, result, remote = ended_run
    done = magsag("pr", inp.run_id, env=cli_env | {"PATH": path_without_gh(tmp_path)})
    assert done.returncode == 1
    assert git_out(remote, "rev-parse", result.integration_branch) == result.integration_commit
    [line] = done.stderr.strip().splitlines()
    assert "`gh` is not on PATH: install it (https://cli.github.com)" in line
    assert f"`magsag pr {inp.run_id}`" in line


async def test_pr_with_gh_logged_out_pushes_and_says_to_log_in(ended_run, cli_env, tmp_path):
    inp, result, remote = ended_run
    env = StandinGh(tmp_path).env(cli_env) | {"GH_STANDIN_LOGGED_OUT": "1"}
    done = magsag("pr", inp.run_id, env=env)
    assert done.returncode == 1
    assert "gh is not logged in: run `gh auth login`" in done.stderr
    assert git_out(remote, "rev-parse", result.integration_branch) == result.integration_commit


async def test_pr_refuses_an_unknown_run_and_an_unknown_remote(ended_run, cli_env, tmp_path):
    inp, result, _ = ended_run
    env = StandinGh(tmp_path).env(cli_env)
    unknown = magsag("pr", "no-such-run", env=env)
    assert (unknown.returncode, unknown.stderr) == (2, "error: unknown run id no-such-run\n")
    no_remote = magsag("pr", inp.run_id, "--remote", "upstream", env=env)
    assert no_remote.returncode == 2
    assert "has no remote 'upstream': add it (`git remote add upstream URL`)" in no_remote.stderr
    assert not StandinGh(tmp_path).prs()


async def test_pr_never_force_pushes_over_a_remote_branch_that_moved(ended_run, cli_env, tmp_path):
    inp, result, remote = ended_run
    branch = result.integration_branch
    other = commit_file(make_repo(tmp_path / "other"), "x.txt", "x", "someone else's")
    git_out(tmp_path / "other", "push", "-q", str(remote), f"HEAD:refs/heads/{branch}")
    done = magsag("pr", inp.run_id, env=StandinGh(tmp_path).env(cli_env))
    assert done.returncode == 1
    assert "has commits the run's branch has not; magsag never force-pushes" in done.stderr
    assert git_out(remote, "rev-parse", branch) == other
    assert not StandinGh(tmp_path).prs()


def test_run_with_pr_opens_the_pull_request_when_the_run_succeeds(repo, cli_env, tmp_path):
    remote = bare_origin(repo, tmp_path)
    plan = bash_plan_file(tmp_path, [{"name": "api", "prompt": "echo api > api.txt"}])
    gh = StandinGh(tmp_path)
    done = magsag("run", plan, "--repo", repo, "--pr", "--json", env=gh.env(cli_env))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pull_request"]["url"] == "https://github.com/acme/widgets/pull/1"
    [pr] = gh.prs()
    assert (pr["head"], pr["base"]) == (result["integration_branch"], "main")
    assert git_out(remote, "rev-parse", pr["head"]) == result["integration_commit"]
    status = magsag("status", result["run_id"], env=cli_env)
    assert f"pull request created: {pr['url']}" in status.stdout


def test_run_with_pr_exits_1_when_the_pull_request_fails_but_the_run_succeeded(
    repo, cli_env, tmp_path
):
    plan = bash_plan_file(tmp_path, [{"name": "api", "prompt": "echo api > api.txt"}])
    done = magsag("run", plan, "--repo", repo, "--pr", env=StandinGh(tmp_path).env(cli_env))
    assert done.returncode == 1
    assert "succeeded" in done.stdout.splitlines()[0]
    assert "pull request not delivered: " in done.stdout and "has no remote 'origin'" in done.stdout
