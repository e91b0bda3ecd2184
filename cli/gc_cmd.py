"""`magsag gc`: clean up after runs that are over, never touching a running one."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from magsag.cli import inputs
from magsag.cli.console import fail, info, print_json
from magsag.cli.options import json_flag
from magsag.cli.runs import described
from magsag.cli.runtime import connect_or_exit
from magsag.history.status import execution_status_name
from magsag.worker import connection

# A leftover gc could not save and remove; the reason follows, and gc exits 1.
NOT_CLEANED = "not cleaned"
GcJsonOpt = json_flag("Print what was done as JSON.")


def gc(
    repo: Annotated[
        Path | None,
        typer.Option(help="Also look in this repository (worktrees under any root)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only say what would be cleaned.")] = False,
    json_output: GcJsonOpt = False,
) -> None:
    """Clean up what ended runs left: save work as WIP, remove worktrees and agents.

    Runs that are no longer running (ended, terminated, or their history gone) are
    cleaned; a running run is never touched. Looks under <state>/worktrees and in --repo,
    and in this host's clones of remotes (runs on a URL), whose refs of ended runs go
    once the remote has their work."""
    try:
        repo_path = inputs.check_repo(repo) if repo else None
    except inputs.InputError as err:
        raise fail(str(err)) from None
    actions = asyncio.run(_gc(repo_path, dry_run))
    if json_output:
        print_json(actions)
    elif not actions:
        info("nothing to clean up")
    if any(action["action"].startswith(NOT_CLEANED) for action in actions):
        raise typer.Exit(1)


async def _gc(repo: Path | None, dry_run: bool) -> list[dict]:
    from magsag.activities import janitor  # only gc needs git and agent processes

    leftovers = await janitor.find_under_root(connection.state_dir() / "worktrees")
    if repo:
        leftovers += await janitor.find_in_repo(str(repo))
    unique = {item.worktree: item for item in leftovers}.values()
    client = await connect_or_exit(start_embedded=False)
    actions = []
    for item in unique:
        state = await _run_state(client, item.run_id)
        action = {"run_id": item.run_id, "task": item.task, "worktree": item.worktree,
                  "run": state, "commit": None}  # fmt: skip
        if state == "running":
            action["action"] = "kept (run is running)"
        elif dry_run:
            action["action"] = "would save and remove"
        else:
            try:
                action["commit"] = await janitor.clean(item)
                action["action"] = "saved and removed" if action["commit"] else "removed"
            except ApplicationError as err:
                action["action"] = f"{NOT_CLEANED}: {err.message}"
        info(f"{item.run_id}/{item.task}: {action['action']} ({item.worktree})")
        actions.append(action)
    return actions + await _prune_clones(client, dry_run)


async def _prune_clones(client: Client, dry_run: bool) -> list[dict]:
    """The refs this host's clones of remotes keep of runs that are over: the remote's
    copies, and the host's branches whose work the remote has."""
    from magsag.activities import clone_refs

    actions = []
    for clone in clone_refs.clones_of(connection.state_dir()):
        for run_id, refs in (await clone_refs.runs_in(clone)).items():
            state = await _run_state(client, run_id)
            if state == "running":
                continue
            action = {"run_id": run_id, "task": None, "clone": str(clone), "run": state}
            if dry_run:
                mine = await clone_refs.on_remote(clone, run_id, refs)
                action["action"] = f"would drop {len(mine) + len(refs.copies)} refs"
            else:
                read = await clone_refs.refresh(clone, run_id, refs)
                dropped, kept = await clone_refs.prune(clone, run_id, refs)
                action["action"] = f"dropped {dropped} refs the remote has"
                if kept:
                    unread = " as this clone last saw it: the remote could not be read"
                    seen = "" if read else unread
                    action["action"] += f", kept {kept} (their work is not on the remote{seen})"
            info(f"{run_id}: {action['action']} ({clone})")
            actions.append(action)
    return actions


async def _run_state(client: Client, run_id: str) -> str:
    """running, an ended status, or "gone" when the server has no such run any more."""
    description = await described(client, run_id)
    return "gone" if description is None else execution_status_name(description.status)
