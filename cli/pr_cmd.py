"""`magsag pr`: push an ended run's integration branch and open, or update, its pull
request with the GitHub CLI (activities/pull_request.py does both)."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client

from magsag.cli.console import fail, info, print_json
from magsag.cli.options import JsonOpt, RunIdArg
from magsag.cli.runs import described, ended_run, run_input_of
from magsag.cli.runtime import web_ui_link
from magsag.contracts import constants as C
from magsag.contracts import remotes
from magsag.contracts.delivery import PullRequestOutcome, PullRequestSpec
from magsag.contracts.run import RunInput
from magsag.history.pr_body import pr_body
from magsag.worker import connection


def pr(
    run_id: RunIdArg,
    remote: Annotated[
        str, typer.Option(help="Remote to push to: a name of the repository's, or a URL.")
    ] = "origin",
    base: Annotated[
        str | None,
        typer.Option(help="Branch the pull request goes into (default: the run's base)."),
    ] = None,
    draft: Annotated[bool, typer.Option(help="Open it as a draft.")] = False,
    title: Annotated[
        str | None, typer.Option(help="Its title (default: magsag: <plan> (<run>)).")
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Push a run's integration branch and open its pull request with `gh`.

    The body tells the run: every task's status, attempts, checks, cost, commit and
    files, the conflicts, what failed or was skipped and why. Run it again to push
    again and update the same pull request. Exit 1 when the branch could not be pushed
    or gh could not open the pull request (the message says what to install or run)."""
    asked = PullRequestSpec(base=base, draft=draft, title=title)
    outcome = asyncio.run(_pr(run_id, remote, asked))
    if json_output:
        print_json({"run_id": run_id, **outcome.model_dump(mode="json")})
    else:
        info(f"pull request {outcome.action}: {outcome.url}")


async def _pr(run_id: str, remote: str, asked: PullRequestSpec) -> PullRequestOutcome:
    from magsag.activities import pull_request  # git and gh: only this command
    from magsag.activities.run_log import append

    client, result, run_input = await ended_run(run_id, "`magsag pr` delivers a run that ended")
    repo = run_input.paths.repo
    if not remotes.is_url(repo) and not Path(repo).is_dir():
        raise fail(f"run {run_id}'s repository {repo} is not on this host")
    deliver = run_input.plan.deliver
    planned = deliver.pull_request if deliver and deliver.pull_request else PullRequestSpec()
    spec = PullRequestSpec(
        base=asked.base or planned.base or await _first_base(client, run_input),
        draft=asked.draft or planned.draft,
        title=asked.title or planned.title,
    )
    body = pr_body(result, run_input.plan, run_input.web_ui or web_ui_link(run_id))
    log_dir = remotes.resolve(run_input.paths.log_dir, connection.state_dir())
    try:
        outcome = await pull_request.deliver(result, repo, remote, spec, body, log_dir)
    except pull_request.DeliveryError as err:
        append(log_dir, "pull_request", error=str(err))
        raise fail(str(err), 2 if err.bad_input else 1) from None
    pull_request.log_outcome(log_dir, outcome)
    return outcome


async def _first_base(client: Client, run_input: RunInput) -> str:
    """The branch the run's work started from: a resumed run starts from the integration
    branch of the run it resumes, whose pull request goes where that run's would."""
    while (earlier := run_input.resumed_from) and run_input.base == C.integration_branch(earlier):
        if await described(client, earlier) is None:  # gone with retention
            break
        run_input = await run_input_of(client.get_workflow_handle(C.plan_workflow_id(earlier)))
    return run_input.base
