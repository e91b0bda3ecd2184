"""A run's git steps on its repository, from the plan workflow's side (the integration
branch, merges, the run's end, a resolver's partial work): on its host's queue (or any
host's, for a run on a URL), retried on a live worker when one dies."""

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.run import RunInput


async def repo_activity(activity, arg, inp: RunInput, summary: str | None = None):
    return await workflow.execute_activity(
        activity,
        arg,
        task_queue=inp.host_queue,
        start_to_close_timeout=C.GIT_ACTIVITY_TIMEOUT,
        heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(
            maximum_interval=C.RETRY_MAX_INTERVAL, maximum_attempts=C.ACTIVITY_MAX_ATTEMPTS
        ),
        summary=summary or activity.__name__,
    )
