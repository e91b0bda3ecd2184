"""Why something failed: every failure kind magsag raises, what each means for retries,
and the details an attempt's failure carries back to its task workflow.

Activities raise `ApplicationError(type=<kind>)`; the task workflow decides from the
kind alone whether another attempt may help (the attempt's own failures), none can
(permanent ones), or the machinery failed (anything else: Temporal retries the same
attempt, and a crash never uses up a task's retries).
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from magsag.contracts.run import Usage


class FailureKind(StrEnum):
    # The attempt's own: its agent or its Definition of Done fell short. Another
    # attempt, with the feedback, may do better.
    AGENT_FAILED = "AgentFailed"
    AGENT_TIMEOUT = "AgentTimeout"
    AGENT_NO_RESULT = "AgentNoResult"
    AGENT_HUNG = "AgentHung"
    AGENT_API_ERROR = "AgentApiError"
    CHECK_FAILED = "CheckFailed"
    OUTPUT_MISSING = "OutputMissing"
    RATE_LIMITED = "RateLimited"  # waits for the reset, then the same attempt again
    AGENT_GIT_STATE = "AgentGitState"  # what the agent did to git refused its checkpoint
    # Permanent: every attempt would fail the same way.
    RUNNER_NOT_FOUND = "RunnerNotFound"
    RUNNER_ENV_MISSING = "RunnerEnvMissing"
    AGENT_AUTH_ERROR = "AgentAuthError"
    AGENT_BAD_ARGUMENTS = "AgentBadArguments"
    # The machinery: git on the worker's host, the run's own branches.
    GIT_ERROR = "GitError"
    INTEGRATION_BRANCH_MISSING = "IntegrationBranchMissing"
    # The remote of a URL run refused a push for another reason than a race (read-only,
    # permissions, a hook): no retry helps; git's message says why.
    PUSH_REJECTED = "PushRejected"
    # A task workflow's end, carrying its TaskResult to the plan workflow.
    TASK_FAILED = "TaskFailed"
    # A task an earlier execution of the run meant to start, whose workflow never did.
    TASK_NOT_STARTED = "TaskNotStarted"
    # After the run: its pull request, a notification (neither fails the run).
    DELIVERY_FAILED = "DeliveryFailed"
    NOTIFY_FAILED = "NotifyFailed"


ATTEMPT_FAILURES = frozenset(
    {
        FailureKind.AGENT_FAILED,
        FailureKind.AGENT_TIMEOUT,
        FailureKind.AGENT_NO_RESULT,
        FailureKind.AGENT_HUNG,
        FailureKind.AGENT_API_ERROR,
        FailureKind.CHECK_FAILED,
        FailureKind.OUTPUT_MISSING,
        FailureKind.RATE_LIMITED,
        FailureKind.AGENT_GIT_STATE,
    }
)
PERMANENT = frozenset(
    {
        FailureKind.RUNNER_NOT_FOUND,
        FailureKind.RUNNER_ENV_MISSING,
        FailureKind.AGENT_AUTH_ERROR,
        FailureKind.AGENT_BAD_ARGUMENTS,
    }
)
# Temporal must not retry these as infrastructure: the task workflow decides.
NOT_RETRIED_BY_TEMPORAL = sorted(ATTEMPT_FAILURES | PERMANENT)


def _cause(err: BaseException) -> BaseException:
    """What an activity or child workflow failed with (the error itself otherwise)."""
    return err.cause if isinstance(err, ActivityError | ChildWorkflowError) and err.cause else err


def kind_of(err: BaseException) -> str | None:
    """The failure kind of an activity's or child's failure (None: no ApplicationError,
    e.g. the timeout of a lost worker)."""
    cause = _cause(err)
    return cause.type if isinstance(cause, ApplicationError) else None


def is_attempt_failure(err: BaseException) -> bool:
    return kind_of(err) in ATTEMPT_FAILURES


def is_permanent(err: BaseException) -> bool:
    return kind_of(err) in PERMANENT


class AttemptFailure(BaseModel):
    """What a failed attempt reports besides its message (the ApplicationError's details)."""

    attempt: int
    log_path: str | None = None
    feedback: str | None = Field(None, description="for the next attempt's prompt")
    usage: Usage = Field(default_factory=Usage)
    rate_limit_reset: datetime | None = None
    session_id: str | None = Field(None, description="the agent's session: it may continue")
    session_lost: str | None = Field(
        None, description="the session it was to continue was not found (why): it ran afresh"
    )

    def error(self, message: str, kind: FailureKind) -> ApplicationError:
        """The ApplicationError an activity raises for this failure."""
        details: dict[str, Any] = self.model_dump(mode="json")
        non_retryable = kind in ATTEMPT_FAILURES or kind in PERMANENT
        return ApplicationError(message, details, type=kind, non_retryable=non_retryable)

    @classmethod
    def of(cls, err: BaseException) -> "AttemptFailure | None":
        """The details of an activity's failure (they arrive as plain dicts), if any."""
        cause = _cause(err)
        if isinstance(cause, ApplicationError) and cause.details:
            detail = cause.details[0]
            if isinstance(detail, dict) and "attempt" in detail:
                return cls.model_validate(detail)
        return None
