"""run_agent: one attempt of a task, from its worktree to its checkpoint commit.

The attempt creates (or reuses) the worktree, runs the agent and the Definition of
Done, commits the checkpoint and removes the worktree, all in one activity so a task
costs one round trip. Every attempt starts from the task's base commit (reset + clean)
after killing any process group an earlier attempt left behind, and an attempt whose
checkpoint already exists only finishes the removal, so a retry after a crash
converges (invariant 2). A run that continues the agent's session (resume_session: after
a rate limit, or `retry: continue`) keeps the worktree as the session left it instead;
rerun after a crash, it continues the session again. The agent runs in its own process
group, which is killed on cancel, timeout or worker shutdown (invariant 4); when the
attempt ends, so does every process that carries its MAGSAG_ATTEMPT_ID, however it left
the group. Output goes to a log file capped per attempt, never to history.
"""

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities import prompts, remote_runs, run_log
from magsag.activities.agent_git import start_from_base
from magsag.activities.agent_output import CappedLog, log_cap_bytes, read_from
from magsag.activities.agent_slots import agent_slot
from magsag.activities.attempt_checks import attempt_failure, definition_of_done
from magsag.activities.git import is_checkpoint, resolve_commit
from magsag.activities.group_run import DeadlineReached, HungAfterResult, run_in_group
from magsag.activities.keepalive import heartbeating
from magsag.activities.process import kill_marked, kill_recorded_group
from magsag.activities.runners import build_argv, new_parser, prompt_on_stdin, session_lost
from magsag.activities.worktree import (
    close_worktree,
    create_worktree,
    reclaim_worktree,
    removal_marker,
)
from magsag.contracts import remotes, run_files
from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    CloseWorktreeInput,
    CloseWorktreeOutput,
    CreateWorktreeInput,
)
from magsag.contracts.failures import AttemptFailure
from magsag.contracts.failures import FailureKind as Kind
from magsag.contracts.run import Usage
from magsag.worker import connection


@activity.defn
@heartbeating
async def run_agent(inp: AgentInput) -> AgentOutput:
    if remotes.is_url(inp.repo):
        return await remote_runs.run_agent(inp, run_agent_here, close_worktree)
    return await run_agent_here(inp)


async def run_agent_here(inp: AgentInput, park: bool = True) -> AgentOutput:
    """The attempt on this host's repository; `park` its worktree for the run's next
    task once its checkpoint is made (parking.py)."""
    async with agent_turn(inp) as pidfile:
        return await _run_attempt(inp, pidfile, park)


@contextlib.asynccontextmanager
async def agent_turn(inp: AgentInput) -> AsyncIterator[Path]:
    """The worker's agent slot for the attempt, once any process group an earlier run
    of it left is dead; yields the pidfile beside its worktree."""
    pidfile = Path(f"{inp.worktree}.pid")
    # A thread: waiting for a killed group to die must not stall other heartbeats.
    stale = await asyncio.to_thread(kill_recorded_group, pidfile)
    if stale:
        activity.logger.warning("killed process group %s left by an earlier attempt", stale)
    async with agent_slot(inp.task):
        yield pidfile


async def _run_attempt(inp: AgentInput, pidfile: Path, park: bool) -> AgentOutput:
    attempt = inp.attempt
    started = time.monotonic()
    log_path = run_files.attempt_log(inp.log_dir, inp.task, attempt)
    checkpoint = CloseWorktreeInput.for_task(
        inp.repo, inp.worktree, inp.run_id, inp.task, mode="checkpoint", log_dir=inp.log_dir,
        base_commit=inp.base_commit, park=park,
    )  # fmt: skip
    if removal_marker(inp.worktree).exists():
        # This attempt's agent is done: its worker died while removing the worktree.
        activity.logger.info("finishing the removal of %s's worktree", inp.task)
        return attempt_output(attempt, log_path, started, await close_worktree(checkpoint))
    if await worktree_at_base(inp, functools.partial(_checkpoint_exists, inp)):
        # An earlier attempt committed its work, then its worker died before reporting.
        activity.logger.info("checkpoint of %s already made; not running the agent again", inp.task)
        return attempt_output(attempt, log_path, started, await close_worktree(checkpoint))

    if inp.plan_ref:
        inp = inp.model_copy(update={"prompt": await prompts.stored_prompt(inp)})
    run_log.append(
        inp.log_dir, "attempt_started", task=inp.task, attempt=attempt,
        **({"resumed_session": inp.resume_session} if inp.resume_session else {}),
    )  # fmt: skip
    ran = await run_and_check(inp, pidfile, log_path, started + inp.timeout_seconds)
    closed = await save_checkpoint(checkpoint, attempt, log_path, ran.usage, ran.lost)
    run_log.append(
        inp.log_dir, "checkpoint", task=inp.task, attempt=attempt, commit=closed.commit,
        cost_usd=ran.usage.cost_usd,
    )  # fmt: skip
    output = attempt_output(attempt, log_path, started, closed, ran.usage, ran.session)
    return output.model_copy(update={"session_lost": ran.lost})


async def worktree_at_base(inp: AgentInput, done) -> bool:
    """The attempt's worktree on its branch at its base commit, made or reused (kept as
    it is when the attempt resumes its agent's session). True, with nothing reset, when
    `done(tip)` says the branch's tip is this attempt's work, already committed."""
    await reclaim_worktree(inp.repo, inp.worktree, inp.branch)
    created = await create_worktree(
        CreateWorktreeInput(
            repo=inp.repo, path=inp.worktree, branch=inp.branch, base_commit=inp.base_commit
        )
    )
    tip = (
        created.base_commit
        if created.new_branch
        else await resolve_commit(f"refs/heads/{inp.branch}", inp.repo)
    )
    if await done(tip):
        return True
    if (created.reused or tip != inp.base_commit) and not inp.resume_session:
        # An earlier attempt's work goes, committed by its agent or not.
        await start_from_base(Path(inp.worktree), inp.branch, inp.base_commit, tip)
    return False


class AgentRun(NamedTuple):
    usage: Usage
    session: str | None
    reply: str | None  # the agent's final answer (None for a plain command: see its log)
    lost: str | None = None  # the session it was to continue was not found: why


class SessionLost(Exception):
    """The agent has no such session to continue (activities/runners: session_lost)."""

    def __init__(self, why: str, usage: Usage) -> None:
        super().__init__(why)
        self.why, self.usage = why, usage


async def run_and_check(
    inp: AgentInput, pidfile: Path, log_path: Path, deadline: float, accept=None,
    failed_event: str = "attempt_failed", env: dict[str, str] | None = None,
) -> AgentRun:  # fmt: skip
    """The agent in the worktree, then `accept` (what else its work must meet: returns
    what falls short, or None) and the Definition of Done; raise on any shortfall, after
    recording it in run.jsonl as `failed_event`. `env`: more for the agent's environment.
    Returns what the agent used, its session and its answer.

    A run that was to continue a session the agent no longer has (its transcript gone
    with a cleaned home or another machine) runs again at once, once, with the task's
    prompt (and feedback) in the worktree as it is: no retry is used, and the result
    says the session was lost."""
    run = functools.partial(_checked_run, pidfile, log_path, deadline, accept, failed_event, env)
    try:
        return await run(inp)
    except SessionLost as gone:
        run_log.append(
            inp.log_dir, "session_lost", task=inp.task, attempt=inp.attempt,
            session=inp.resume_session, reason=gone.why,
        )  # fmt: skip
        try:
            ran = await run(inp.model_copy(update={"resume_session": None}))
        except ApplicationError as err:
            raise _with_lost(err, gone) from None
        return ran._replace(usage=ran.usage + gone.usage, lost=gone.why)


def _with_lost(err: ApplicationError, gone: SessionLost) -> ApplicationError:
    """The fresh run's failure, with what the lost session's run used, and why."""
    failure = AttemptFailure.of(err)
    if failure is None:
        return err
    failure.usage = failure.usage + gone.usage
    failure.session_lost = gone.why
    return failure.error(err.message, Kind(err.type))


async def _checked_run(
    pidfile: Path, log_path: Path, deadline: float, accept, failed_event: str,
    env: dict[str, str] | None, inp: AgentInput,
) -> AgentRun:  # fmt: skip
    marker = f"{inp.run_id}/{inp.task}/{inp.attempt}/{uuid.uuid4().hex[:12]}"
    try:
        return await _attempt(
            inp, Path(inp.worktree), pidfile, marker, log_path, deadline, accept, env or {}
        )
    except ApplicationError as err:
        run_log.append(
            inp.log_dir, failed_event, task=inp.task, attempt=inp.attempt, kind=err.type,
            error=str(err)[:300],
        )  # fmt: skip
        raise
    finally:
        # Whatever the agent or the checks left running, daemons included, ends here; the
        # pidfile is only for a worker that dies without reaching this line.
        await asyncio.to_thread(kill_marked, marker)
        pidfile.unlink(missing_ok=True)


async def _attempt(
    inp: AgentInput, worktree, pidfile, marker, log_path, deadline, accept, more_env
) -> AgentRun:
    """Run the agent, then the Definition of Done; raise on any shortfall. Returns what
    the agent reported it used, its session and its answer."""
    attempt = inp.attempt
    prompt = prompts.attempt_prompt(inp)
    argv = build_argv(inp.runner, prompt, inp.resume_session)
    env = prompts.agent_env(inp, prompt, marker) | more_env
    parser = new_parser(inp.runner)
    stdin = prompt.encode() if prompt_on_stdin(inp.runner) else b""
    events = run_files.task_events(inp.log_dir, inp.task)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as file:
        log = CappedLog(file, log_cap_bytes())
        start = log.tell()
        try:
            code = await run_in_group(
                argv, worktree, env, log, pidfile, attempt, deadline, stdin, parser, events
            )
        except (DeadlineReached, HungAfterResult) as stopped:
            kind, message = (
                (Kind.AGENT_TIMEOUT, f"timed out after {inp.timeout_seconds:g}s")
                if isinstance(stopped, DeadlineReached)
                else (Kind.AGENT_HUNG, "the agent printed its result but did not exit; stopped")
            )
            session = _session(parser)
            raise attempt_failure(
                message, kind, attempt, log_path, usage=_usage(parser), session=session
            ) from None
        if inp.resume_session and parser is not None:
            log.flush()
            _check_session(inp, parser.outcome(code), read_from(log_path, start), parser)
        usage = _check_outcome(parser, code, attempt, log_path)
        spent = {"usage": usage, "session": _session(parser)}
        shortfall = await accept() if accept else None
        if shortfall:
            kind = Kind.CHECK_FAILED
            raise attempt_failure(shortfall, kind, attempt, log_path, shortfall, **spent)
        try:
            await definition_of_done(
                inp, worktree, env, log, pidfile, attempt, deadline, log_path, spent
            )
        except DeadlineReached:
            message = f"timed out after {inp.timeout_seconds:g}s (in the checks)"
            raise attempt_failure(message, Kind.AGENT_TIMEOUT, attempt, log_path, **spent) from None
    return AgentRun(usage, spent["session"], parser.reply if parser is not None else None)


def _check_session(inp: AgentInput, outcome, printed: str, parser) -> None:
    """Raise SessionLost when the agent has no session inp.resume_session."""
    if session_lost(inp.runner, inp.resume_session, outcome, printed):
        why = f"{inp.runner.kind} has no session {inp.resume_session} to continue"
        raise SessionLost(why, _usage(parser, outcome))


def _session(parser) -> str | None:
    """The session the agent reported (claude's session_id, codex's thread_id)."""
    return parser.outcome(-1).session_id if parser is not None else None


def _check_outcome(parser, code: int, attempt: int, log_path: Path) -> Usage:
    """The attempt's usage when the agent succeeded; else the failure, by its kind."""
    if parser is None:
        if code != 0:
            message = f"agent exited with code {code}"
            raise attempt_failure(message, Kind.AGENT_FAILED, attempt, log_path)
        return Usage()
    outcome = parser.outcome(code)
    usage = _usage(parser, outcome)
    if not outcome.ok:
        failure = AttemptFailure(
            attempt=attempt,
            log_path=str(log_path),
            usage=usage,
            rate_limit_reset=outcome.rate_limit_reset,
            session_id=outcome.session_id,
        )
        raise failure.error(f"{outcome.kind}: {outcome.message}", outcome.kind)
    return usage


def _usage(parser, outcome=None) -> Usage:
    """An outcome's tokens and cost in the contracts' terms (zero for a plain command)."""
    if parser is None:
        return Usage()
    outcome = outcome or parser.outcome(-1)
    return Usage(
        **outcome.usage.to_dict(),
        cost_usd=outcome.cost_usd or 0.0,
        cost_estimated=outcome.cost_estimated,
    )


def attempt_output(
    attempt,
    log_path,
    started,
    closed: CloseWorktreeOutput,
    usage: Usage | None = None,
    session: str | None = None,
) -> AgentOutput:
    return AgentOutput(
        attempt=attempt,
        usage=usage or Usage(),
        log_path=str(log_path),
        duration_seconds=round(time.monotonic() - started, 3),
        commit=closed.commit,
        changed_files=closed.changed_files,
        host=connection.hostname(),
        session_id=session,
    )


async def _checkpoint_exists(inp: AgentInput, tip: str | None) -> bool:
    """Whether the task branch's tip is this task's checkpoint (never the agent's own
    commit, nor the WIP an earlier attempt of a URL run pushed)."""
    return (
        tip is not None
        and tip != inp.base_commit
        and await is_checkpoint(tip, inp.run_id, inp.task, inp.repo)
    )


async def save_checkpoint(
    checkpoint: CloseWorktreeInput, attempt: int, log_path: Path, usage: Usage,
    lost: str | None = None,
) -> CloseWorktreeOutput:  # fmt: skip
    """The checkpoint commit. What the agent did to git may refuse it: the attempt then
    fails (another attempt may do better), its worktree kept for the WIP save."""
    try:
        return await close_worktree(checkpoint)
    except ApplicationError as err:
        if err.type != Kind.AGENT_GIT_STATE:
            raise
        run_log.append(
            checkpoint.log_dir, "attempt_failed", task=checkpoint.task, attempt=attempt,
            kind=err.type, error=err.message[:300],
        )  # fmt: skip
        feedback = f"Your work could not be saved: {err.message}."
        failure = AttemptFailure(
            attempt=attempt, log_path=str(log_path), feedback=feedback, usage=usage,
            session_lost=lost,
        )  # fmt: skip
        raise failure.error(err.message, Kind.AGENT_GIT_STATE) from None
