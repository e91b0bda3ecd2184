"""Where a run's workflows go: with its activities, on the run's queue, so the server hands
each activity to the worker in the reply to the workflow task that scheduled it."""

from magsag.contracts import constants as C
from magsag.contracts.run import RunStatus
from tests.support.cli import magsag_json
from tests.support.runs import bash_plan, bash_plan_file, run_input, start_run

TASKS = [{"name": "a", "prompt": "echo a > a.txt"}, {"name": "b", "prompt": "echo b > b.txt"}]


async def test_a_runs_workflows_share_the_queue_of_its_activities(client, tmp_path, repo, cli_env):
    run = magsag_json("run", bash_plan_file(tmp_path, TASKS), "--repo", repo, env=cli_env)
    assert run["status"] == "succeeded"
    host_queue = C.host_queue(cli_env["MAGSAG_HOST"])
    for workflow_id in (C.plan_workflow_id(run["run_id"]), C.task_workflow_id(run["run_id"], "a")):
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.task_queue == host_queue


async def test_a_run_an_earlier_version_started_on_the_shared_queue_still_runs(
    client, worker, repo, tmp_path
):
    inp = run_input(bash_plan(TASKS), repo, tmp_path, worker)
    handle = await start_run(client, inp, queue=worker.task_queue)
    assert (await handle.result()).status == RunStatus.SUCCEEDED
    assert (await handle.describe()).task_queue == worker.task_queue
