"""Delivering a run: push its integration branch and open, or update, its pull request.

`magsag pr` calls deliver() in its own process; a run whose plan asks for a pull request
(`deliver: {pull_request: ...}`, `magsag run --pr`) calls it through the activity below
once it has succeeded. Pushing is never forced (invariant 3): a remote branch that moved
under the run is an error, not something to overwrite. Running it again pushes again and
edits the pull request `gh pr list --head <branch>` finds, so there is never a second one.
"""

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities.git import GitResult, git, resolve_commit
from magsag.activities.keepalive import heartbeating
from magsag.activities.run_log import append
from magsag.contracts import remotes, run_files
from magsag.contracts.activities import DeliverInput
from magsag.contracts.delivery import PullRequestOutcome, PullRequestSpec
from magsag.contracts.failures import FailureKind
from magsag.contracts.run import RunResult
from magsag.history.pr_body import pr_body, pr_title
from magsag.history.status import execution_input, initial_state
from magsag.worker import connection

GH_TIMEOUT_SECONDS = 60
GH_INSTALL = "https://cli.github.com"
# Kinds of URL whose repository gh can be told (--repo HOST/OWNER/REPO); a path or
# another host's URL leaves gh to find the repository from the checkout's remotes.
_REMOTE_URL = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/"
    r"|[^@/]+@(?P<scp_host>[^:/]+):)(?P<path>[^/]+/[^/]+?)(?:\.git)?/?$"
)


class DeliveryError(Exception):
    """Why the run was not delivered; str() is one line for the user.

    bad_input: the command's arguments were wrong (exit 2, nothing pushed); permanent:
    trying again as it is cannot help (no gh, a diverged remote branch)."""

    def __init__(self, message: str, *, bad_input: bool = False, permanent: bool = True):
        super().__init__(message)
        self.bad_input = bad_input
        self.permanent = permanent


async def deliver(
    result: RunResult,
    repo: str,
    remote: str,
    spec: PullRequestSpec,
    body: str,
    log_dir: str | None = None,
) -> PullRequestOutcome:
    """Push the run's integration branch to `remote` (a remote's name, or a URL or
    path), then open its pull request with gh, or edit the one already there. A run on
    a URL has pushed its branch as it went: its pull request is on that remote."""
    branch = result.integration_branch
    if remotes.is_url(repo):  # a URL run's integration branch is on its remote already
        url, remote, cwd = repo, remotes.shown(repo), tempfile.gettempdir()
    else:
        url, cwd = await _remote_url(repo, remote), repo
        if await resolve_commit(f"refs/heads/{branch}", repo) is None:
            raise DeliveryError(f"the run's integration branch {branch} is gone from {repo}")
        await _push(repo, remote, branch)
    again = f"then `magsag pr {result.run_id}`"
    gh = shutil.which("gh")
    if gh is None:
        raise DeliveryError(
            f"{branch} is pushed to {remote}, but the GitHub CLI `gh` is not on PATH: "
            f"install it ({GH_INSTALL}), run `gh auth login`, {again}"
        )
    github = _github_repo(url)
    host = ["--hostname", github.split("/")[0]] if github else []
    if (await _gh(gh, cwd, "auth", "status", *host)).returncode != 0:
        raise DeliveryError(
            f"{branch} is pushed to {remote}, but gh is not logged in: run `gh auth login`, {again}"
        )
    where = ["--repo", github] if github else []
    outcome = PullRequestOutcome(remote=remote, branch=branch, pushed=True)
    with _body_file(body, log_dir) as body_path:
        existing = await _existing(gh, cwd, branch, where)
        if existing is not None:
            title = ["--title", spec.title] if spec.title else []
            args = ["pr", "edit", str(existing["number"]), *where, *title, "--body-file", body_path]
            await _gh_or_fail(gh, cwd, *args)
            outcome.url, outcome.number, outcome.action = (
                existing["url"], existing["number"], "updated"
            )  # fmt: skip
        else:
            args = ["pr", "create", *where, "--head", branch, "--base", spec.base or result.base]
            args += ["--title", pr_title(result, spec.title), "--body-file", body_path]
            created = await _gh_or_fail(gh, cwd, *args, *(["--draft"] if spec.draft else []))
            outcome.url = created.strip().splitlines()[-1] if created.strip() else None
            number = re.search(r"/pull/(\d+)", outcome.url or "")
            outcome.number, outcome.action = int(number.group(1)) if number else None, "created"
    return outcome


async def _remote_url(repo: str, remote: str) -> str:
    found = await git("remote", "get-url", "--", remote, cwd=repo, check=False)
    if found.returncode == 0:
        return found.stdout.strip()
    if "/" in remote or ":" in remote:  # a URL or path git can push to as it is
        return remote
    raise DeliveryError(
        f"{repo} has no remote '{remote}': add it (`git remote add {remote} URL`) "
        "or name another with --remote",
        bad_input=True,
    )


async def _push(repo: str, remote: str, branch: str) -> None:
    ref = f"refs/heads/{branch}"
    pushed = await git("push", "--porcelain", "--", remote, f"{ref}:{ref}", cwd=repo, check=False)
    if pushed.returncode == 0:
        return
    said = " ".join((pushed.stderr + pushed.stdout).split())
    if "[rejected]" in pushed.stdout or "non-fast-forward" in said or "fetch first" in said:
        raise DeliveryError(
            f"{remote}'s {branch} has commits the run's branch has not; magsag never "
            "force-pushes: merge them into the run's branch, or delete the remote branch, "
            f"then push again ({said[:300]})"
        )
    raise DeliveryError(f"git push to {remote} failed: {said[:500]}", permanent=False)


def _github_repo(url: str) -> str | None:
    """HOST/OWNER/REPO of a remote URL, for gh's --repo; None for a path."""
    found = _REMOTE_URL.match(url)
    if found is None:
        return None
    return f"{found.group('host') or found.group('scp_host')}/{found.group('path')}"


async def _existing(gh: str, cwd: str, branch: str, where: list[str]) -> dict | None:
    """The pull request of the branch, open or not: delivering again edits that one."""
    listed = await _gh_or_fail(
        gh, cwd, "pr", "list", *where, "--head", branch, "--state", "all",
        "--json", "number,url,state", "--limit", "1",
    )  # fmt: skip
    try:
        found = json.loads(listed or "[]")
    except json.JSONDecodeError:
        raise DeliveryError(f"gh pr list printed no JSON: {listed[:200]}") from None
    return found[0] if found else None


async def _gh_or_fail(gh: str, cwd: str, *args: str) -> str:
    done = await _gh(gh, cwd, *args)
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:500]
        raise DeliveryError(f"gh {' '.join(args[:2])} failed: {said}", permanent=False)
    return done.stdout


async def _gh(gh: str, cwd: str, *args: str) -> GitResult:
    """gh in the repository (it reads the remotes there), never prompting."""
    env = os.environ | {"GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        gh, *args, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GH_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DeliveryError(
            f"gh {' '.join(args[:2])} did not answer in {GH_TIMEOUT_SECONDS}s", permanent=False
        ) from None
    return GitResult(out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode)


@contextlib.contextmanager
def _body_file(body: str, log_dir: str | None):
    """The body as gh reads it: kept as <run dir>/pull-request.md, else a temporary file."""
    if log_dir:
        path = run_files.pull_request_body(log_dir)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        except OSError:  # a state dir that cannot be written costs the copy, not the PR
            pass
        else:
            yield str(path)
            return
    with tempfile.TemporaryDirectory(prefix="magsag-pr-") as folder:
        path = Path(folder) / "body.md"
        path.write_text(body)
        yield str(path)


def log_outcome(log_dir: str | None, outcome: PullRequestOutcome) -> None:
    append(log_dir, "pull_request", **outcome.model_dump(mode="json", exclude_none=True))


@activity.defn
@heartbeating
async def open_pull_request(inp: DeliverInput) -> PullRequestOutcome:
    """The run's pull request, from the run's end: the body needs every task, so those
    of earlier executions and resumed runs come from where status reads them."""
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
    run_input = await execution_input(handle)
    tasks = (await initial_state(handle, run_input)).tasks | inp.result.tasks
    result = inp.result.model_copy(update={"tasks": tasks})
    body = pr_body(result, run_input.plan, run_input.web_ui)
    log_dir = remotes.resolve(run_input.paths.log_dir, connection.state_dir())
    try:
        outcome = await deliver(
            result, run_input.paths.repo, inp.remote, inp.pull_request, body, log_dir
        )
    except DeliveryError as err:
        activity.logger.warning("run %s not delivered: %s", result.run_id, err)
        append(log_dir, "pull_request", error=str(err), attempt=info.attempt)
        raise ApplicationError(
            str(err), type=FailureKind.DELIVERY_FAILED, non_retryable=err.permanent
        ) from None
    log_outcome(log_dir, outcome)
    return outcome
