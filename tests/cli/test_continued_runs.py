"""A run that continued as new, as a user sees it from the CLI: `status --json` lists
every task however many executions it took, `runs list` counts them, `runs describe`
reads every execution, and `resume` carries the succeeded ones (packed) into a new run."""

import json

from magsag.contracts import constants as C
from tests.support.cli import magsag, magsag_json
from tests.support.poll import eventually
from tests.support.runs import bash_plan_file


async def test_a_continued_run_reads_whole_and_resumes(client, repo, cli_env, tmp_path):
    fixed = tmp_path / "fixed"
    tasks = [
        *[{"name": f"t{i}", "prompt": f"echo {i} > t{i}.txt"} for i in range(1, 8)],
        {"name": "b", "prompt": f"test -e {fixed} && echo b > b.txt"},
        {"name": "c", "prompt": "cat b.txt > c.txt", "depends_on": ["b"]},
    ]
    plan = bash_plan_file(tmp_path, tasks, concurrency=2)
    env = cli_env | {C.ENV_CONTINUE_AS_NEW_AFTER: "2"}
    failed = magsag_json("run", plan, "--repo", repo, env=env)
    expected = {f"t{i}": "succeeded" for i in range(1, 8)} | {"b": "failed", "c": "skipped"}
    assert {n: t["status"] for n, t in failed["tasks"].items()} == expected
    assert failed["status"] == "failed"
    executions = f"WorkflowId = '{C.plan_workflow_id(failed['run_id'])}'"
    await eventually(lambda: _count(client, executions, 3), what="three executions or more")
    status = magsag_json("status", failed["run_id"], env=env)
    assert status["tasks"] == failed["tasks"]
    assert all(status["tasks"][f"t{i}"]["commit"] for i in range(1, 8))

    listed = magsag_json("runs", "list", "--repo", repo, env=env)
    [row] = [r for r in listed if r["run_id"] == failed["run_id"]]
    assert row["tasks"] == {"succeeded": 7, "failed": 1, "skipped": 1}

    described = magsag_json("runs", "describe", failed["run_id"], env=env)
    assert {n: t["status"] for n, t in described["tasks"].items()} == expected
    assert all(t["attempts"] for n, t in described["tasks"].items() if n != "c")

    fixed.touch()
    done = magsag("resume", failed["run_id"], "--json", env=env)
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout)
    assert {t["status"] for t in resumed["tasks"].values()} == {"succeeded"}
    assert resumed["tasks"]["t1"]["commit"] == failed["tasks"]["t1"]["commit"]


async def _count(client, query: str, at_least: int) -> bool:
    return len([e async for e in client.list_workflows(query)]) >= at_least
