"""Invariant 5: a runner's secret reaches the agent and appears nowhere else."""

import json
from pathlib import Path

from magsag.contracts import constants as C
from tests.support.cli import magsag
from tests.support.gitrepo import git_out

SECRET = "sk-test-0123456789-do-not-leak"


async def test_a_secret_named_by_the_runner_never_leaves_the_worker(
    client, cli_env, repo, tmp_path
):
    plan = tmp_path / "plan.json"
    agent = (
        # The agent uses the secret (its length proves it arrived) without printing it.
        'test -n "$MAGSAG_TEST_SECRET" && echo "${#MAGSAG_TEST_SECRET}" > secret-length.txt'
    )
    plan.write_text(json.dumps({
        "runners": {"sh": {"command": ["bash", "-c", agent], "env": ["MAGSAG_TEST_SECRET"]}},
        "tasks": [{"name": "uses-secret", "prompt": "use the key"},
                  {"name": "fails", "prompt": "x", "runner": "sh", "checks": ["false"],
                   "critical": False}],
    }))  # fmt: skip
    env = {**cli_env, "MAGSAG_TEST_SECRET": SECRET}
    done = magsag("run", plan, "--repo", repo, "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tasks"]["uses-secret"]["status"] == "succeeded"
    branch = result["integration_branch"]
    assert git_out(repo, "show", f"{branch}:secret-length.txt") == str(len(SECRET))

    seen = {"cli output": done.stdout + done.stderr}
    run_id = result["run_id"]
    for workflow_id in [C.plan_workflow_id(run_id)] + [
        C.task_workflow_id(run_id, name) for name in result["tasks"]
    ]:
        handle = client.get_workflow_handle(workflow_id)
        seen[f"history of {workflow_id}"] = (await handle.fetch_history()).to_json()
        description = await handle.describe()
        seen[f"search attributes of {workflow_id}"] = str(description.typed_search_attributes)
        seen[f"memo of {workflow_id}"] = str(await description.memo())
    for path in Path(cli_env["MAGSAG_STATE_DIR"]).rglob("*"):
        if path.is_file() and path.suffix in (".log", ".jsonl", ".json", ".pid"):
            seen[str(path)] = path.read_text(errors="replace")
    leaks = [where for where, text in seen.items() if SECRET in text]
    assert leaks == []
    assert len(seen) > 5  # histories, logs and output were all looked at
    status = magsag("status", run_id, "--json", env=env)
    assert SECRET not in status.stdout + status.stderr
