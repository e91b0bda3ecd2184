"""`runs describe` of a big run: a summary, not a timeline per task, and one task's
timeline on request. The 2,000-task run is made up (tests/support/big_run.py) and its
view built with no server, as from recorded histories; --json runs a real one."""

import functools
import json
from dataclasses import replace

from temporalio.contrib.pydantic import pydantic_data_converter

from magsag.cli.describe_text import summary_lines, task_lines
from magsag.cli.overview import FAILURES_SHOWN
from magsag.history.describe import RunRecords, build_run_view
from magsag.history.views import RunView
from tests.support.big_run import big_run
from tests.support.cli import magsag_json
from tests.support.gitrepo import make_repo


@functools.cache
def _recorded_big_run() -> RunRecords:
    return big_run(2_000)


async def _big_view(read: set[str] | None = None) -> tuple[RunRecords, RunView]:
    """The view `runs describe` builds of a finished big run; read: the tasks whose
    histories it read (None: all)."""
    records = _recorded_big_run()
    if read is not None:
        records = replace(records, tasks={name: records.tasks[name] for name in read})
    return records, await build_run_view(records, pydantic_data_converter)


async def test_describe_summarizes_a_big_run():
    records, view = await _big_view(read=set())  # the summary reads no task's history
    lines = summary_lines(view, records.result)
    assert len(lines) < 50
    assert "tasks: 1964 succeeded, 40 failed" in lines
    slowest = lines[lines.index("slowest tasks:") + 1 :][:10]
    assert all("ran 29." in line and "succeeded" in line for line in slowest), slowest
    failures = lines[lines.index("failures:") + 1 :][: FAILURES_SHOWN + 1]
    assert all("AgentFailed" in line for line in failures[:-1])
    assert failures[-1].strip().startswith("… and 30 more failed")
    [path] = [line for line in lines if line.startswith("critical path:")]
    assert path.startswith("critical path: setup-0 -> setup-1 -> setup-2 -> setup-3 -> ")
    assert lines[-1] == "a task's timeline: magsag runs describe big --task NAME"


async def test_describe_of_one_task_of_a_big_run_reads_its_history_and_the_path_s():
    # What describe_run reads for `--task migrate-00007`: that task's and the path's.
    _, full = await _big_view()
    records, view = await _big_view(read={"migrate-00007", *full.critical_path.tasks})
    assert view.critical_path == full.critical_path
    assert view.tasks["migrate-00007"] == full.tasks["migrate-00007"]
    lines = task_lines(view, records.result, ["migrate-00007", "setup-3"])
    text = "\n".join(lines)
    assert "attempt 1 failed after" in text and "AgentFailed: agent exited with code 3" in text
    assert "  plan: sh  after setup-3" in lines
    assert lines[-1].startswith("on the critical path: setup-3")
    assert len(lines) < 25


async def test_describe_json_of_a_big_run_reads_only_the_histories_it_details(tmp_path, cli_env):
    # 21 tasks: over SMALL_RUN. head -> tail is the critical path (tail sleeps long
    # enough that no other task ends last, however loaded the machine).
    tasks = [
        {"name": "head", "prompt": "echo h > h.txt"},
        {"name": "tail", "prompt": "sleep 4; echo t > t.txt", "depends_on": ["head"]},
    ] + [{"name": f"w{n:02d}", "prompt": f"echo {n} > w{n}.txt"} for n in range(19)]
    plan = tmp_path / "plan.yaml"
    runner = {"sh": {"command": ["bash", "-c", "{prompt}"]}}
    plan.write_text(json.dumps({"concurrency": 8, "runners": runner, "tasks": tasks}))
    repo = make_repo(tmp_path / "repo")
    run_id = magsag_json("run", plan, "--repo", repo, "--json", env=cli_env)["run_id"]

    view = magsag_json("runs", "describe", run_id, "--json", env=cli_env)
    assert view["critical_path"]["tasks"] == ["head", "tail"]
    detailed = {name for name, task in view["tasks"].items() if task["detailed"]}
    assert detailed == {"head", "tail"}  # the other 19 histories were not read
    assert all(view["tasks"][n]["status"] == "succeeded" for n in view["tasks"])
    assert view["tasks"]["w03"]["attempts"] == [] and view["tasks"]["w03"]["commit"]

    one = magsag_json("runs", "describe", run_id, "--task", "w03", "--json", env=cli_env)
    assert list(one["tasks"]) == ["w03"] and one["tasks"]["w03"]["detailed"]
    [attempt] = one["tasks"]["w03"]["attempts"]
    assert attempt["outcome"] == "succeeded" and attempt["changed_files"] == ["w3.txt"]
