"""Starting a run and following it to its end: what `run`, `resume` and `demo` share.

prepare_run checks every input and builds the run's input (exit 2 before anything
exists); start_and_follow starts the plan workflow and follows it, hosting a worker
when none polls.
"""

import asyncio
import functools
import os
import subprocess
from collections import Counter
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from magsag.cli import inputs, remote_inputs
from magsag.cli.console import fail, info, print_json
from magsag.cli.progress import follow_run, report
from magsag.cli.runtime import (
    connect_or_exit,
    ensure_search_attributes,
    web_ui_link,
    worker_if_needed,
    workers_present,
)
from magsag.contracts import constants as C
from magsag.contracts import remotes, run_files
from magsag.contracts.delivery import Deliver, PullRequestSpec
from magsag.contracts.plan import Plan
from magsag.contracts.run import RUN_MEMO, RunInput, RunPaths, RunResult, RunStatus
from magsag.worker import connection

# Exit code after Ctrl-C, as shells report a command ended by SIGINT.
INTERRUPTED = 130


def prepare_run(
    plan: Path,
    repo: Path | str,
    base: str | None,
    concurrency: int | None,
    worktree_root: Path | None,
    provider_map: str | None = None,
    max_cost: float | None = None,
    pull_request: bool = False,
) -> RunInput:
    """Check every input and build the run's input; exits 2 before anything exists.
    pull_request (--pr): open a pull request when the run succeeds."""
    try:
        mapping = inputs.parse_provider_map(provider_map)
        inputs.check_max_cost(max_cost)
        loaded = inputs.check_plan(plan, mapping)
        state = inputs.check_state_dir(connection.state_dir())
        chosen = inputs.check_concurrency(concurrency) or loaded.concurrency
        if remotes.is_url(str(repo)):
            where = _on_remote(str(repo), base or loaded.base, worktree_root)
        else:
            where = _on_this_host(Path(repo), base or loaded.base, worktree_root, state)
    except inputs.InputError as err:
        raise fail(str(err)) from None
    if max_cost is not None:
        loaded.budget.max_cost_usd = max_cost
    run_id = inputs.new_run_id(loaded.name)
    base_name, base_commit, paths_of, queue = where
    _deliver_to(loaded, base_name, pull_request)
    return RunInput(
        run_id=run_id,
        plan=loaded,
        base=base_name,
        base_commit=base_commit,
        paths=paths_of(run_id),
        host_queue=queue,
        concurrency=chosen,
        continue_after=_continue_after(),
        web_ui=web_ui_link(run_id),
    )


def _deliver_to(plan: Plan, base: str, asked: bool) -> None:
    """--pr asks for the plan's `deliver: {pull_request: {}}`; its base defaults to the
    run's, fixed now so a resumed run (on the integration branch) delivers there too."""
    if asked and not (plan.deliver and plan.deliver.pull_request):
        plan.deliver = Deliver(pull_request=PullRequestSpec())
    if plan.deliver and plan.deliver.pull_request and plan.deliver.pull_request.base is None:
        plan.deliver.pull_request.base = base


def _on_this_host(repo: Path, base: str | None, worktree_root: Path | None, state: Path):
    """A run on a path: host-bound, its files on this host."""
    repo_path = inputs.check_repo(repo)
    uncommitted = inputs.uncommitted_note(repo_path)
    try:
        base_name, base_commit = inputs.check_base(repo_path, base)
        root = inputs.check_worktree_root(worktree_root or state / "worktrees", repo_path)
    finally:
        note = uncommitted()  # waited for even when a check fails: no git left running
    if note:
        info(note)

    def paths(run_id: str) -> RunPaths:
        log_dir = str(run_files.run_dir(state, run_id))
        return RunPaths(repo=str(repo_path), worktree_root=str(root), log_dir=log_dir)

    return base_name, base_commit, paths, C.host_queue(connection.hostname())


def _on_remote(url: str, base: str | None, worktree_root: Path | None):
    """A run on a URL: any worker takes its steps, in its own clone and state dir."""
    if worktree_root is not None:
        raise inputs.InputError(
            "--worktree-root: a run on a URL works under each worker's own state dir"
        )
    url = remote_inputs.check_url(url)
    base_name, base_commit = remote_inputs.check_base(url, base)
    paths = functools.partial(remote_inputs.paths, url)
    return base_name, base_commit, paths, remote_inputs.activity_queue()


def _continue_after() -> int:
    """Tasks per execution of the plan workflow (MAGSAG_CONTINUE_AS_NEW_AFTER)."""
    value = os.environ.get(C.ENV_CONTINUE_AS_NEW_AFTER, "").strip()
    if not value:
        return C.CONTINUE_AS_NEW_AFTER
    if not value.isdigit() or int(value) < 1:
        raise fail(f"{C.ENV_CONTINUE_AS_NEW_AFTER}={value}: expected a number of tasks, at least 1")
    return int(value)


def _initial_header(run_input: RunInput) -> dict:
    """The memo's RUN_MEMO before the workflow's first publish, so status answers at once."""
    initial = RunResult.initial(run_input)
    counts = Counter(task.status.value for task in initial.tasks.values())
    return initial.header_memo(dict(counts))


async def start_and_follow(run_input: RunInput, detach: bool, json_output: bool) -> int:
    client = await connect_or_exit(start_embedded=True)
    # Side by side: a question to the server, git writing the plan into the repository.
    _, run_input = await asyncio.gather(
        ensure_search_attributes(client), asyncio.to_thread(_with_stored_plan, run_input)
    )
    handle = await client.start_workflow(
        C.PLAN_WORKFLOW,
        run_input,
        result_type=RunResult,
        id=C.plan_workflow_id(run_input.run_id),
        task_queue=run_input.host_queue,  # with its activities: worker/assembly.py
        search_attributes=_search_attributes(run_input),
        static_summary=f"magsag run of plan '{run_input.plan.name}' on {run_input.paths.repo}",
        static_details=_details(run_input),
        memo={RUN_MEMO: _initial_header(run_input)},
    )
    if detach:
        if json_output:
            print_json({"run_id": run_input.run_id})
        else:
            print(run_input.run_id, flush=True)
        if not await workers_present(client, run_input.host_queue):
            info("note: no magsag worker is polling; start one with `magsag worker`")
        return 0
    info(
        f"run {run_input.run_id} started; integration branch "
        f"{C.integration_branch(run_input.run_id)}"
    )
    link = web_ui_link(run_input.run_id)
    if link:
        info(f"Web UI: {link}")
    result = await follow_hosting(
        client, handle, run_input.run_id, run_input.host_queue, len(run_input.plan.tasks)
    )
    return INTERRUPTED if result is None else report(result, json_output)


async def follow_hosting(
    client: Client, handle: WorkflowHandle, run_id: str, run_queue: str, tasks: int | None = None
) -> RunResult | None:
    """Follow the run to its end, running a worker here if none polls.

    Ctrl-C stops following, not the run: this says in one line what becomes of the
    run and how to follow or cancel it, and returns None."""
    async with worker_if_needed(client, run_queue) as hosted:
        try:
            return await follow_run(handle, quiet=False, tasks=tasks)
        except asyncio.CancelledError:  # asyncio.run's answer to Ctrl-C
            info(interrupted_line(run_id, hosted))
            return None


def interrupted_line(run_id: str, hosted: bool) -> str:
    follow, cancel = f"`magsag watch {run_id}`", f"`magsag cancel {run_id}`"
    if hosted:
        return (
            f"interrupted: run {run_id} waits for a worker (this command ran the only one, "
            f"now stopped); {follow} or `magsag worker` lets it go on, {cancel} stops it"
        )
    return (
        f"interrupted: run {run_id} goes on with its worker; follow it with {follow}, "
        f"stop it with {cancel}"
    )


def _with_stored_plan(run_input: RunInput) -> RunInput:
    """The plan goes into the repository once; the run carries its id and the DAG (a
    resumed run keeps the plan its first run stored)."""
    if run_input.plan_ref is not None:
        return run_input
    from magsag.activities import plan_store  # git: only commands that start a run

    repo = run_input.paths.repo
    try:
        if remotes.is_url(repo):  # also where a read-only remote is found out
            plan_ref = plan_store.store_on_remote(repo, run_input.plan, connection.state_dir())
        else:
            plan_ref = plan_store.store(Path(repo), run_input.plan)
    except subprocess.CalledProcessError as err:
        why = " ".join(err.stderr.decode().split())
        raise fail(f"cannot store the plan in {remotes.shown(repo)}: {why}") from None
    return run_input.model_copy(update={"plan": run_input.plan.dag(), "plan_ref": plan_ref})


def _search_attributes(run_input: RunInput) -> TypedSearchAttributes:
    values = {
        "MagsagRepo": run_input.paths.repo,
        "MagsagPlan": run_input.plan.name,
        "MagsagRunStatus": RunStatus.RUNNING.value,
    }
    if run_input.resumed_from:
        values["MagsagResumedFrom"] = run_input.resumed_from
    return TypedSearchAttributes(
        [SearchAttributePair(SearchAttributeKey.for_keyword(k), v) for k, v in values.items()]
    )


def _details(run_input: RunInput) -> str:
    tasks = "\n".join(
        f"- {t.name} ({t.runner})" + (f" after {', '.join(t.depends_on)}" if t.depends_on else "")
        for t in run_input.plan.tasks
    )
    return (
        f"repo: {run_input.paths.repo}\nbase: {run_input.base} ({run_input.base_commit[:10]})\n"
        f"concurrency: {run_input.concurrency}\n"
        f"integration branch: {C.integration_branch(run_input.run_id)}\n"
        + (f"resumed from run: {run_input.resumed_from}\n" if run_input.resumed_from else "")
        + f"\ntasks:\n\n{tasks}"
    )
