"""A run that cannot go on ends, with the reason, every task final, nothing retried forever."""

from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from magsag.contracts import constants as C
from magsag.contracts.run import RunPaths, RunStatus, TaskStatus
from magsag.contracts.wire import data_converter
from magsag.history.events import parse
from magsag.workflows import repo_steps
from magsag.workflows.registry import ALL_WORKFLOWS
from tests.support.gitrepo import git_out
from tests.support.runs import bash_plan, run_input, run_plan, start_run


async def run_status_attribute(client: Client, run_id: str) -> str:
    description = await client.get_workflow_handle(C.plan_workflow_id(run_id)).describe()
    return {k.name: v for k, v in description.typed_search_attributes}["MagsagRunStatus"]


async def histories(client: Client, run_id: str, tasks) -> list:
    ids = [C.plan_workflow_id(run_id)] + [C.task_workflow_id(run_id, name) for name in tasks]
    return [await client.get_workflow_handle(i).fetch_history() for i in ids]


async def replays(history) -> None:
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=data_converter)
    await replayer.replay_workflow(history)


async def test_a_branch_checked_out_past_the_wait_fails_the_run_untouched(
    client, worker, repo, tmp_path, monkeypatch
):
    monkeypatch.setattr(C, "CHECKED_OUT_WAIT", timedelta(seconds=2))
    plan = bash_plan([{"name": "work", "prompt": "echo w > w.txt"}])
    inp = run_input(plan, repo, tmp_path, worker)
    branch = C.integration_branch(inp.run_id)
    # The user's own worktree on the integration branch, as soon as it exists.
    git_out(repo, "branch", branch, "main")
    mine = tmp_path / "mine"
    git_out(repo, "worktree", "add", "-q", str(mine), branch)

    result = await (await start_run(client, inp)).result()

    assert result.status == RunStatus.FAILED
    blocked = f"integration branch {branch} is checked out in {mine}"
    assert result.error == (
        f"{blocked} (waited 2s); it was not moved under that checkout; check out another "
        f"branch there, then `magsag resume {inp.run_id}`"
    )
    assert result.waiting_on is None
    assert result.tasks["work"].status == TaskStatus.FAILED
    assert result.tasks["work"].error.startswith(f"not merged: {blocked}")
    assert git_out(repo, "rev-parse", branch) == git_out(repo, "rev-parse", "main")
    assert git_out(mine, "status", "--porcelain", "--untracked-files=all") == ""
    assert await run_status_attribute(client, inp.run_id) == "failed"
    await replays((await histories(client, inp.run_id, []))[0])


async def test_an_activity_failing_for_good_ends_the_run_with_its_reason(
    client, worker, repo, tmp_path, monkeypatch
):
    monkeypatch.setattr(C, "ACTIVITY_MAX_ATTEMPTS", 2)  # the bound, shortened for the test
    plan = bash_plan([{"name": "a", "prompt": "true"}, {"name": "b", "prompt": "true"}])
    inp = run_input(plan, repo, tmp_path, worker)
    gone = tmp_path / "moved-away"  # the repository is not where the run expects it
    inp.paths = RunPaths(repo=str(gone), worktree_root=inp.paths.worktree_root,
                         log_dir=inp.paths.log_dir)  # fmt: skip
    handle: WorkflowHandle = await start_run(client, inp)

    result = await handle.result()

    assert result.status == RunStatus.FAILED
    assert result.error == (
        f"could not create the integration branch {C.integration_branch(inp.run_id)}: "
        f"[Errno 2] No such file or directory: '{gone}'"
    )
    assert {t.status for t in result.tasks.values()} == {TaskStatus.SKIPPED}
    assert await run_status_attribute(client, inp.run_id) == "failed"
    await replays((await histories(client, inp.run_id, []))[0])


async def test_every_activity_is_scheduled_with_a_bounded_retry_policy(
    client, worker, repo, tmp_path
):
    plan = bash_plan([
        {"name": "ok", "prompt": "echo ok > ok.txt"},
        {"name": "broken", "prompt": "echo half > half.txt; exit 1", "critical": False},
    ])  # fmt: skip
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    scheduled, local = {}, set()
    for history in await histories(client, inp.run_id, result.tasks):
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attributes = event.activity_task_scheduled_event_attributes
                scheduled[attributes.activity_type.name] = attributes.retry_policy
        local |= {s.kind for s in parse(history.events).spans if _is_marker(s)}
    assert set(scheduled) == {"run_agent", "close_worktree", "integrate"}
    assert all(0 < policy.maximum_attempts <= 10 for policy in scheduled.values()), scheduled
    # The run's first and last steps run as local activities (workflows/repo_steps.py),
    # whose policy history does not show: the same as the others'.
    assert local == {"prepare_integration", "record_run_end"}
    assert 0 < repo_steps._retry().maximum_attempts <= 10


def _is_marker(span) -> bool:
    return span.opened.DESCRIPTOR.name == "MarkerRecordedEventAttributes"


async def test_a_state_dir_lost_mid_run_does_not_hold_up_the_run(client, worker, repo, tmp_path):
    # The agent turns the run's log directory into a file: every later line of
    # run.jsonl fails to be written, the run's end included.
    runs = tmp_path / "state" / "runs"
    lose = f'rm -rf "{runs}/$MAGSAG_RUN_ID" && touch "{runs}/$MAGSAG_RUN_ID"'
    plan = bash_plan([{"name": "a", "prompt": f"echo a > a.txt; {lose}"}])
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    assert Path(inp.paths.log_dir).is_file()
    assert result.status == RunStatus.SUCCEEDED
    assert git_out(repo, "show", f"{C.integration_branch(inp.run_id)}:a.txt") == "a"
    assert await run_status_attribute(client, inp.run_id) == "succeeded"
