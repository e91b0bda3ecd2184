"""What an agent is given: its prompt (the task's, with the feedback of a failed attempt,
or a short message when its session continues) and its environment."""

import os

from temporalio.exceptions import ApplicationError

from magsag.activities import plan_store
from magsag.activities.git import GitError
from magsag.contracts import constants as C
from magsag.contracts.activities import AgentInput
from magsag.contracts.failures import FailureKind as Kind


async def stored_prompt(inp: AgentInput) -> str:
    """The task's prompt from the plan the run stored in the repository."""
    try:
        return await plan_store.prompt_of(inp.repo, inp.plan_ref, inp.plan_task or inp.task)
    except (GitError, KeyError, ValueError) as err:
        raise ApplicationError(
            f"the run's stored plan {inp.plan_ref} has no prompt for {inp.task} in "
            f"{inp.repo}: {err}",
            type=Kind.GIT_ERROR,
            non_retryable=True,
        ) from None


def attempt_prompt(inp: AgentInput) -> str:
    """The task's prompt; after a failed Definition of Done, with what failed. A session
    that continues has the task already: it gets a short message instead."""
    if inp.resume_session:
        return continue_prompt(inp.feedback)
    if not inp.feedback:
        return inp.prompt
    return (
        f"{inp.prompt}\n\n---\nYour previous attempt (attempt {inp.attempt - 1}) was not "
        f"accepted. {inp.feedback}\nFix this in your work."
    )


def continue_prompt(feedback: str | None) -> str:
    """The next turn of a continued session: after failed checks, what failed; after an
    interruption (a rate limit, a lost worker), to carry on."""
    if feedback:
        return (
            f"Your work was checked and not accepted. {feedback}\n"
            "Fix this in your work; your changes so far are still in the working directory."
        )
    return (
        "Your session was interrupted before you finished (a rate limit). Continue the task "
        "where you left off; your changes so far are still in the working directory."
    )


def agent_env(inp: AgentInput, prompt: str, marker: str) -> dict[str, str]:
    missing = [name for name in inp.runner.env if name not in os.environ]
    if missing:
        raise ApplicationError(
            f"environment variable {missing[0]} named by the runner is not set on the worker",
            type=Kind.RUNNER_ENV_MISSING,
            non_retryable=True,
        )
    env = dict(os.environ)
    env.update(
        {
            C.ENV_RUN_ID: inp.run_id,
            C.ENV_TASK: inp.plan_task or inp.task,
            C.ENV_ATTEMPT: str(inp.attempt),
            C.ENV_WORKTREE: inp.worktree,
            C.ENV_PROMPT: prompt,
            C.ENV_ATTEMPT_ID: marker,
        }
    )
    if inp.candidate is not None:
        env[C.ENV_CANDIDATE] = str(inp.candidate)
    return env
