"""What `magsag resume` runs: a new run's input made from an ended run's, on its
integration branch, with only the tasks that did not succeed (and their dependents)."""

from pathlib import Path

from magsag.cli import inputs, remote_inputs
from magsag.cli.console import fail
from magsag.cli.runs import ended_run
from magsag.cli.runtime import web_ui_link
from magsag.contracts import constants as C
from magsag.contracts import remotes, run_files
from magsag.contracts.run import RunInput, RunStatus, TaskStatus
from magsag.contracts.task_rows import pack_all
from magsag.worker import connection


async def resumed_input(run_id: str, only: str | None) -> RunInput:
    """The new run's input; exits 2 when the run cannot be resumed (with --task `only`:
    that task and its dependents run again)."""
    _, result, old = await ended_run(run_id, "cancel it first or wait for it")
    if only is not None and only not in result.tasks:
        raise fail(f"--task {only}: no such task in run {run_id}")
    if only is None and result.status == RunStatus.SUCCEEDED:
        raise fail(f"run {run_id} succeeded; nothing to resume")
    unfinished = {n for n, t in result.tasks.items() if t.status != TaskStatus.SUCCEEDED}
    rerun = with_dependents(old, {only} if only else unfinished)
    new_id = inputs.new_run_id(old.plan.name)
    if remotes.is_url(old.paths.repo):
        tip, paths, queue = _on_remote(old, result.integration_branch, new_id)
    else:
        tip, paths, queue = _on_this_host(old, result.integration_branch, new_id)
    return old.model_copy(
        update={
            "run_id": new_id,
            "base": result.integration_branch,
            "base_commit": tip,
            "paths": paths,
            "host_queue": queue,
            "resumed_from": run_id,
            "carried": {},
            "carried_rows": pack_all(
                [t for n, t in result.tasks.items() if n not in rerun], result.started_at
            ),
            "handover": None,
            "web_ui": web_ui_link(new_id),
        }
    )


def _on_this_host(old: RunInput, integration: str, new_id: str):
    """The old run's repository and worktree root, this host's queue and state dir."""
    try:
        tip = inputs.check_base(Path(old.paths.repo), integration)[1]
    except inputs.InputError:
        raise fail(f"the integration branch {integration} is gone") from None
    try:
        state = inputs.check_state_dir(connection.state_dir())
        root = old.paths.worktree_root
        inputs.check_writable_dir(Path(root), f"worktree root {root} (of run {old.run_id})")
    except inputs.InputError as err:
        raise fail(str(err)) from None
    paths = old.paths.model_copy(update={"log_dir": str(run_files.run_dir(state, new_id))})
    return tip, paths, C.host_queue(connection.hostname())


def _on_remote(old: RunInput, integration: str, new_id: str):
    """The old run's remote, its integration branch read there; any host's workers."""
    url = old.paths.repo
    try:
        tip = remote_inputs.check_base(url, integration)[1]
    except remote_inputs.InputError as err:
        raise fail(str(err)) from None
    return tip, remote_inputs.paths(url, new_id), remote_inputs.activity_queue()


def with_dependents(run_input: RunInput, names: set[str]) -> set[str]:
    """names plus every task that depends on them, directly or not."""
    selected = set(names)
    changed = True
    while changed:
        changed = False
        for task in run_input.plan.tasks:
            if task.name not in selected and selected.intersection(task.depends_on):
                selected.add(task.name)
                changed = True
    return selected
