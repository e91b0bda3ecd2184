"""Running plans in tests: plans of bash snippets, and a run helper on real workers."""

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from magsag.contracts import constants as C
from magsag.contracts.plan import Plan
from magsag.contracts.plan_loader import parse_plan
from magsag.contracts.run import RunInput, RunPaths, RunResult
from magsag.workflows.plan import PlanWorkflow
from tests.support.gitrepo import git_out


@dataclass(frozen=True)
class Queues:
    """The shared queue (workflows of runs that earlier versions started) and the host
    queue: a run's workflows and activities (worker/assembly.py)."""

    task_queue: str
    host_queue: str

    @classmethod
    def of_user(cls, env: dict) -> "Queues":
        """The queues `magsag worker` polls in a user's environment (tests.support.cli)."""
        return cls(env["MAGSAG_TASK_QUEUE"], C.host_queue(env["MAGSAG_HOST"]))


# A `command` runner that runs each task's prompt as a bash script.
BASH_RUNNERS = {"sh": {"command": ["bash", "-c", "{prompt}"]}}


def bash_plan_data(tasks: list[dict] | None = None, **plan: object) -> dict:
    """A plan (as a user writes it) whose prompts are bash scripts; `phases=` instead
    of tasks gives the phases form."""
    data = {"name": "test", "runners": BASH_RUNNERS, **plan}
    if tasks is not None:
        data["tasks"] = tasks
    return data


def migration_tasks(n: int) -> list[dict]:
    """n tasks named and summarized as a migration of a package per task names them."""
    return [
        {"name": f"migrate-package-{i:05d}",
         "prompt": f"Migrate packages/pkg-{i:05d} to the new logging API and update its tests"}
        for i in range(n)
    ]  # fmt: skip


def bash_plan(tasks: list[dict], **plan: object) -> Plan:
    """A bash plan, loaded as the workflows get it."""
    return parse_plan(bash_plan_data(tasks, **plan), "test-plan.yaml")


# Runners of every agent kind, run by the stand-in CLIs in STANDINS (the `standins`
# fixture of tests/workflows puts them on PATH), and a bash one.
STANDINS = Path(__file__).parents[1] / "runners" / "standins"
AGENT_RUNNERS = {
    "claude": {"kind": "claude", "model": "claude-sonnet-4-5"},
    "codex": {"kind": "codex", "model": "gpt-5"},
    "gemini": {"kind": "gemini", "model": "gemini-2.5-pro"},
    "sh": {"command": ["bash", "-c", "{prompt}"]},
}


def agent_plan(tasks: list[dict], **plan: object) -> Plan:
    return bash_plan(tasks, runners=AGENT_RUNNERS, **plan)


def bash_plan_file(
    folder: Path, tasks: list[dict] | None = None, filename: str = "plan.json", **plan: object
) -> Path:
    """A bash plan written to folder/filename, for the CLI (JSON is YAML)."""
    path = folder / filename
    path.write_text(json.dumps(bash_plan_data(tasks, **plan)))
    return path


def run_input(plan: Plan, repo: Path, tmp_path: Path, queues, concurrency=None) -> RunInput:
    run_id = f"t-{uuid.uuid4().hex[:10]}"
    return RunInput(
        run_id=run_id,
        plan=plan,
        base="main",
        base_commit=git_out(repo, "rev-parse", "main"),
        paths=RunPaths(
            repo=str(repo),
            worktree_root=str(tmp_path / "worktrees"),
            log_dir=str(tmp_path / "state" / "runs" / run_id),
        ),
        host_queue=queues.host_queue,
        concurrency=concurrency or plan.concurrency,
    )


async def start_run(client: Client, inp: RunInput, queue: str | None = None) -> WorkflowHandle:
    """Start the run as `magsag run` does: on its activities' queue (or on `queue`)."""
    return await client.start_workflow(
        PlanWorkflow.run, inp, id=C.plan_workflow_id(inp.run_id), task_queue=queue or inp.host_queue
    )


async def run_plan(client: Client, plan: Plan, repo: Path, tmp_path: Path, queues, **kw):
    """Run a plan to its end; returns (input, result)."""
    inp = run_input(plan, repo, tmp_path, queues, **kw)
    handle = await start_run(client, inp)
    result: RunResult = await handle.result()
    return inp, result


def branch_files(repo: Path, ref: str) -> set[str]:
    return set(git_out(repo, "ls-tree", "-r", "--name-only", ref).splitlines())


def parked(worktree: str | Path) -> str:
    """Where a task's worktree waits, all its work committed, for the run's next task."""
    return str(Path(worktree).parent / ".parked" / Path(worktree).name)


def worktrees_left(repo: Path) -> list[str]:
    """Worktrees registered besides the main checkout."""
    lines = git_out(repo, "worktree", "list", "--porcelain").splitlines()
    paths = [line.split(" ", 1)[1] for line in lines if line.startswith("worktree ")]
    return [p for p in paths if Path(p) != repo]


async def retried_activities(client: Client, run_id: str, tasks: list[str]) -> list[str]:
    """Activity types that started more than once as the same attempt in the run's
    histories: what a dead worker held, or what failed and was retried."""
    ids = [C.plan_workflow_id(run_id)] + [C.task_workflow_id(run_id, n) for n in tasks]
    found = []
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        types = {}
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                types[event.event_id] = event.activity_task_scheduled_event_attributes
            started = event.activity_task_started_event_attributes
            if event.HasField("activity_task_started_event_attributes") and started.attempt > 1:
                found.append(types[started.scheduled_event_id].activity_type.name)
    return sorted(found)
