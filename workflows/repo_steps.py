"""A run's git steps on its repository, from the plan and task workflows (the integration
branch, merges, the run's end, partial work saved, candidates judged): on its host's queue
(or any host's, for a run on a URL), retried on a live worker when one dies."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.run import RunInput, TaskInput


async def repo_activity(
    activity,
    arg,
    inp: RunInput | TaskInput,
    summary: str | None = None,
    timeout: timedelta = C.GIT_ACTIVITY_TIMEOUT,
):
    return await workflow.execute_activity(
        activity,
        arg,
        task_queue=inp.host_queue,
        start_to_close_timeout=timeout,
        heartbeat_timeout=C.HEARTBEAT_TIMEOUT,
        retry_policy=RetryPolicy(
            maximum_interval=C.RETRY_MAX_INTERVAL, maximum_attempts=C.ACTIVITY_MAX_ATTEMPTS
        ),
        summary=summary or activity.__name__,
    )
