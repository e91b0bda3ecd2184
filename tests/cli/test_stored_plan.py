"""Prompts never travel through Temporal: the plan is stored once in the repository.

A plan whose prompts together exceed what Temporal accepts in one payload (2 MB) runs:
workflows carry the DAG and the stored plan's id, each agent gets its whole prompt, and
no history holds a prompt.
"""

import json
import uuid

from magsag.contracts import constants as C
from tests.support.cli import magsag
from tests.support.gitrepo import git_out
from tests.support.runs import bash_plan_file

TASKS = 24
PROMPT_BYTES = 90_000  # each under Linux's 128 KB limit on one argv element


async def test_a_plan_larger_than_a_temporal_payload_runs_with_every_prompt_whole(
    client, cli_env, repo, tmp_path
):
    marker = f"prompt-marker-{uuid.uuid4().hex}"
    script = 'printf %s "${#MAGSAG_PROMPT}" > "len-$MAGSAG_TASK.txt" # '
    prompt = script + (marker + " ") * (PROMPT_BYTES // (len(marker) + 1))
    tasks = [{"name": f"t{i}", "prompt": prompt} for i in range(TASKS)]
    plan = bash_plan_file(tmp_path, tasks, concurrency=8)
    assert plan.stat().st_size > 2 * 1024 * 1024

    done = magsag("run", plan, "--repo", repo, "--json", env=cli_env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    branch = C.integration_branch(result["run_id"])
    for i in range(TASKS):  # every agent got its whole prompt
        assert git_out(repo, "show", f"{branch}:len-t{i}.txt") == str(len(prompt))

    ids = [C.plan_workflow_id(result["run_id"])] + [
        C.task_workflow_id(result["run_id"], f"t{i}") for i in range(TASKS)
    ]
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        assert marker not in history.to_json(), f"a prompt is in {workflow_id}'s history"
    stored = git_out(repo, "for-each-ref", "--format=%(objectname)", "refs/magsag/plans/")
    assert marker in git_out(repo, "cat-file", "blob", stored)
    assert len(stored.split()) == 1  # stored once
