"""A run whose plan asks for a pull request (`deliver:`) opens it when it succeeds, from
an activity on the repository's host; a failed delivery shows and leaves the run
succeeded; a failed run delivers nothing."""

from pathlib import Path

import pytest

from magsag.contracts.plan_loader import load_plan
from magsag.contracts.run import RunStatus
from magsag.history import run_log
from tests.support.delivery import StandinGh, bare_origin, standin_gh_here
from tests.support.gitrepo import git_out, make_repo
from tests.support.runs import bash_plan, retried_activities, run_input, run_plan, start_run

DELIVER = {"pull_request": {"title": "Add the API", "draft": True}}


@pytest.fixture
def gh(tmp_path, monkeypatch) -> StandinGh:
    return standin_gh_here(tmp_path, monkeypatch)


async def test_a_succeeded_run_opens_the_pull_request_its_plan_asks_for(
    client, worker, repo, tmp_path, gh
):
    remote = bare_origin(repo, tmp_path)
    plan = bash_plan([{"name": "api", "prompt": "echo api > api.txt"}], deliver=DELIVER)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED
    pr = result.pull_request
    assert (pr.action, pr.error) == ("created", None)
    assert pr.url == "https://github.com/acme/widgets/pull/1"
    assert git_out(remote, "rev-parse", result.integration_branch) == result.integration_commit
    [opened] = gh.prs()
    assert (opened["title"], opened["draft"], opened["base"]) == ("Add the API", True, "main")
    assert "| `api` | ✅ succeeded | 1 |" in opened["body"]
    end = run_log.run_end(run_log.read(inp.paths.log_dir))
    assert end["pull_request"]["url"] == pr.url


async def test_a_failed_delivery_shows_and_the_run_stays_succeeded(
    client, worker, repo, tmp_path, gh
):
    plan = bash_plan([{"name": "api", "prompt": "echo api > api.txt"}], deliver=DELIVER)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)  # no remote origin
    assert result.status == RunStatus.SUCCEEDED
    assert "has no remote 'origin'" in result.pull_request.error
    assert result.pull_request.url is None
    assert await retried_activities(client, inp.run_id, []) == []  # it cannot help: no retry
    end = run_log.run_end(run_log.read(inp.paths.log_dir))
    assert end["status"] == "succeeded" and "no remote" in end["pull_request"]["error"]
    assert gh.calls() == []


async def test_a_failed_run_delivers_nothing(client, worker, repo, tmp_path, gh):
    bare_origin(repo, tmp_path)
    plan = bash_plan([{"name": "bad", "prompt": "exit 1"}], deliver=DELIVER)
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.FAILED
    assert result.pull_request is None and gh.calls() == []


async def test_the_deliver_example_opens_its_draft_pull_request(client, worker, tmp_path, gh):
    repo = make_repo(tmp_path / "repo")
    bare_origin(repo, tmp_path)
    plan = load_plan(Path(__file__).parents[2] / "examples" / "deliver.yaml")
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert result.status == RunStatus.SUCCEEDED and result.pull_request.action == "created"
    [opened] = gh.prs()
    assert (opened["draft"], opened["title"]) == (True, "Health endpoint, with its tests")
    assert "| `tests` | ✅ succeeded | 1 | 1/1 |" in opened["body"]


async def test_the_pull_request_of_a_run_continued_as_new_lists_every_task(
    client, worker, repo, tmp_path, gh
):
    bare_origin(repo, tmp_path)
    tasks = [{"name": f"t{i}", "prompt": f"echo {i} > t{i}.txt"} for i in range(5)]
    plan = bash_plan(tasks, deliver=DELIVER, concurrency=1)
    inp = run_input(plan, repo, tmp_path, worker).model_copy(update={"continue_after": 2})
    result = await (await start_run(client, inp)).result()
    assert result.status == RunStatus.SUCCEEDED and len(result.tasks) < 5  # some packed
    [opened] = gh.prs()
    for i in range(5):
        assert f"| `t{i}` | ✅ succeeded | 1 |" in opened["body"]
