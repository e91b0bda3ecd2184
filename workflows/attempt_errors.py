"""What a task's failed attempt says to the task workflow: whether it was cancelled, why
it failed (on one line), the feedback and usage it carries, how long a rate limit asks
to wait, and the backoff before the next attempt; and how the task ends failed."""

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.failures import AttemptFailure, FailureKind, kind_of
    from magsag.contracts.run import TaskResult, Usage

DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=1)
# Temporal retries of one attempt lost to a dead worker (or to an error of the
# worker's machine) before the task gives up. A failure that is not the attempt's own
# ends the task once they are spent, instead of using one of the task's retries: a new
# attempt would meet the same machine.
MAX_INFRASTRUCTURE_RETRIES = 10


def task_failed(result: TaskResult) -> ApplicationError:
    """How a task workflow ends failed: its result rides along to the plan workflow."""
    return ApplicationError(
        f"task {result.name} failed: {result.error}",
        result.model_dump(mode="json"),
        type=FailureKind.TASK_FAILED,
        non_retryable=True,
    )


def cancelled(err: BaseException) -> bool:
    """The task was cancelled: directly, or as the attempt it was waiting for."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return isinstance(cause, (asyncio.CancelledError, CancelledError))


def error_text(err: BaseException) -> str:
    """The failure's reason, on one line (git and agents print several)."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, TemporalTimeout):
        return (
            f"the attempt's worker was lost {MAX_INFRASTRUCTURE_RETRIES} times in a row "
            f"(last: {str(cause) or 'timeout'}); see the worker's log"
        )
    return " ".join(str(cause).split()) or type(cause).__name__


def continues(failure: AttemptFailure | None) -> bool:
    """The failed run's agent reported a session another run can continue."""
    return failure is not None and bool(failure.session_id)


def feedback(err: ActivityError) -> str | None:
    """What the failed attempt's Definition of Done said, for the next prompt."""
    failure = AttemptFailure.of(err)
    return failure.feedback if failure else None


def usage_of(err: ActivityError) -> Usage:
    """A failed attempt costs too; a worker that died reported nothing."""
    failure = AttemptFailure.of(err)
    return failure.usage if failure else Usage()


def rate_limit_wait(err: ActivityError) -> timedelta | None:
    """How long to wait for a rate limit's reset; None when the failure is another."""
    if kind_of(err) != FailureKind.RATE_LIMITED:
        return None
    failure = AttemptFailure.of(err)
    if failure is None or failure.rate_limit_reset is None:
        return DEFAULT_RATE_LIMIT_WAIT
    return max(failure.rate_limit_reset - workflow.now(), timedelta(seconds=1))


def backoff(attempt: int) -> timedelta:
    """Wait before attempt n (n >= 2): 1s, 2s, 4s, ... up to RETRY_MAX_INTERVAL."""
    delay = C.RETRY_INITIAL_INTERVAL * 2 ** (attempt - 2)
    return min(delay, C.RETRY_MAX_INTERVAL)
