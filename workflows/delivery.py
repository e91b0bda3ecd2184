"""The run's pull request, opened when the run succeeds and its plan asks for one.

An activity on the repository's host pushes the integration branch and opens (or
updates) the pull request, so it happens with no CLI attached (--detach) and survives
a crash like any step. Its outcome, the URL or why there is none, goes in the run's
result; a failed delivery leaves the run succeeded: its work is merged and `magsag pr`
delivers it again.
"""

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import DeliverInput
    from magsag.contracts.delivery import PullRequestOutcome
    from magsag.contracts.run import RunInput, RunResult
    from magsag.workflows import texts

# Patch: a succeeded run whose plan asks for a pull request delivers it (before: none).
DELIVER_PULL_REQUEST = "deliver-pull-request"


async def pull_request(inp: RunInput, result: RunResult) -> PullRequestOutcome | None:
    """The pull request of a succeeded run, None when the plan asks for none."""
    spec = inp.plan.deliver.pull_request if inp.plan.deliver else None
    if spec is None or not workflow.patched(DELIVER_PULL_REQUEST):
        return None
    try:
        return await workflow.execute_activity(
            activities.open_pull_request,
            DeliverInput(result=result, pull_request=spec),
            task_queue=inp.host_queue,
            start_to_close_timeout=C.GIT_ACTIVITY_TIMEOUT,
            heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                maximum_interval=C.RETRY_MAX_INTERVAL, maximum_attempts=C.DELIVERY_ATTEMPTS
            ),
            summary="push the integration branch and open its pull request",
        )
    except ActivityError as err:
        return PullRequestOutcome(error=texts.reason(err))
