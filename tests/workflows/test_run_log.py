"""The run's own record on disk: run.jsonl tells the run's story without a server."""

from magsag.history.run_log import read
from tests.support.runs import bash_plan, run_plan
from tests.workflows.test_replay import EVERY_PATH


async def test_run_jsonl_records_every_state_change(client, worker, repo, tmp_path):
    plan = bash_plan(EVERY_PATH, concurrency=8)
    inp, result = await run_plan(client, plan, repo, tmp_path, worker)
    events = read(inp.paths.log_dir)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"

    def of(task: str) -> list[str]:
        return [e["event"] for e in events if e.get("task") == task]

    assert of("ok") == ["attempt_started", "worktree_parked", "checkpoint", "integrated"]
    assert of("flaky")[:2] == ["attempt_started", "attempt_failed"]
    assert of("flaky").count("attempt_started") == 2
    assert of("right")[-1] == "conflict"
    assert of("broken")[-3:] == ["attempt_failed", "work_saved", "worktree_removed"]
    assert of("after-broken") == []  # skipped: it never started
    finished = events[-1]
    assert finished["status"] == result.status.value
    assert finished["tasks"] == {name: t.status.value for name, t in result.tasks.items()}
    assert finished["tasks"]["after-broken"] == "skipped"
