"""`magsag run` (also `magsag agent exec`): check a plan and its inputs, start the run and
follow it (cli/launch.py does both)."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from magsag.cli.launch import prepare_run, start_and_follow
from magsag.cli.options import JsonOpt, PlanArg

RUN_HELP = (
    "Run a plan on a repository and wait for it (or --detach).\n\n"
    "Each task works in its own worktree and ends in a checkpoint commit merged into "
    "magsag/<run-id>/integration. Exit 0 when the run succeeded, 1 when it did not, "
    "2 on bad input, in which case nothing is created."
)


def run(
    plan: PlanArg,
    repo: Annotated[
        str,
        typer.Option(
            help="Git repository the agents work on: a path (this host's workers run the "
            "tasks), or a URL (file://, ssh://, https://, git://, user@host:path) whose "
            "tasks any worker may take, pushing each task's work to it."
        ),
    ] = ".",
    base: Annotated[
        str | None,
        typer.Option(
            help="Branch to start from (default: the plan's base, else the checked-out branch)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Tasks running at once, 1-64 (default: the plan's, else 4).")
    ] = None,
    worktree_root: Annotated[
        Path | None,
        typer.Option(
            help="Where worktrees go (default: <state>/worktrees), outside the repository."
        ),
    ] = None,
    provider_map: Annotated[
        str | None,
        typer.Option(
            help="Runner per agent category, e.g. backend=codex,frontend=claude "
            "(overrides the plan's provider_map)."
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Budget in USD: past it no new task starts (overrides the plan's)."),
    ] = None,
    detach: Annotated[bool, typer.Option(help="Return once the run has started.")] = False,
    pr: Annotated[
        bool,
        typer.Option(
            "--pr",
            help="When the run succeeds, push its integration branch and open a pull request "
            "with `gh` (as the plan's `deliver: {pull_request: {}}`).",
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Run a plan on a repository and wait for it (or --detach)."""
    run_input = prepare_run(
        plan,
        repo,
        base,
        concurrency,
        worktree_root,
        provider_map=provider_map,
        max_cost=max_cost,
        pull_request=pr,
    )
    code = asyncio.run(start_and_follow(run_input, detach, json_output))
    raise typer.Exit(code)
