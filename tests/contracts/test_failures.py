"""Failure kinds: one place says which failures another attempt may fix, and which not."""

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError

from magsag.contracts.failures import (
    NOT_RETRIED_BY_TEMPORAL,
    AttemptFailure,
    FailureKind,
    is_attempt_failure,
    is_permanent,
    kind_of,
)
from magsag.contracts.run import Usage


@pytest.mark.parametrize(
    ("kind", "attempt_failure", "permanent"),
    [
        (FailureKind.CHECK_FAILED, True, False),
        (FailureKind.RATE_LIMITED, True, False),
        (FailureKind.AGENT_AUTH_ERROR, False, True),
        (FailureKind.RUNNER_NOT_FOUND, False, True),
        (FailureKind.GIT_ERROR, False, False),  # the machinery: Temporal retries it
    ],
)
def test_each_kind_says_whether_another_attempt_may_help(kind, attempt_failure, permanent):
    err = ApplicationError("boom", type=kind)
    assert (is_attempt_failure(err), is_permanent(err)) == (attempt_failure, permanent)
    assert (kind in NOT_RETRIED_BY_TEMPORAL) == (attempt_failure or permanent)


def test_an_attempts_failure_details_travel_with_its_error_and_back():
    reset = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    usage = Usage(output_tokens=5, cost_usd=0.5)
    sent = AttemptFailure(
        attempt=2, log_path="/l", feedback="fix it", usage=usage, rate_limit_reset=reset
    )
    err = sent.error("rate limited", FailureKind.RATE_LIMITED)
    assert err.non_retryable and kind_of(err) == FailureKind.RATE_LIMITED
    # Details cross Temporal as JSON: the workflow sees plain dicts.
    plain = ApplicationError("rate limited", *err.details, type=err.type)
    assert AttemptFailure.of(plain) == sent


def test_a_failure_without_details_has_none():
    assert AttemptFailure.of(ApplicationError("git failed", type=FailureKind.GIT_ERROR)) is None
    assert kind_of(RuntimeError("not a Temporal failure")) is None
