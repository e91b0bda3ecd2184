"""A run's git steps on its repository, from the plan and task workflows (the integration
branch, merges, the run's end, partial work saved, candidates judged): on its host's queue
(or any host's, for a run on a URL), retried on a live worker when one dies."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.run import RunInput, TaskInput

# Patches: the run's first and last steps (the integration branch, the run's end) run as
# local activities where the workflow runs on the run's own queue (before: activities).
# One each: a patch asked at two points is remembered from the first.
LOCAL_PREPARE = "local-prepare"
LOCAL_RUN_END = "local-run-end"


def _retry() -> RetryPolicy:
    return RetryPolicy(
        maximum_interval=C.RETRY_MAX_INTERVAL, maximum_attempts=C.ACTIVITY_MAX_ATTEMPTS
    )


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
        retry_policy=_retry(),
        summary=summary or activity.__name__,
    )


async def run_step(activity, arg, inp: RunInput, patch: str, summary: str | None = None):
    """A step of the run's own that nothing else runs beside (the run's first and last):
    a local activity, run by the worker that runs this workflow task, saving the round
    trip through the server and the workflow task that follows it (~20 ms each on the
    short-task bench). Only where this workflow runs on the run's own queue, whose
    workers are the run's host's (or, for a run on a URL, any host's) and run its
    activities: a run an older magsag started on the shared queue keeps the activity."""
    if not _local(inp, patch):
        return await repo_activity(activity, arg, inp, summary)
    try:
        return await workflow.execute_local_activity(
            activity,
            arg,
            start_to_close_timeout=C.GIT_ACTIVITY_TIMEOUT,
            retry_policy=_retry(),
            summary=summary or activity.__name__,
        )
    except (ApplicationError, TimeoutError) as err:
        # A local activity's failure comes bare; callers handle an activity's, as before.
        raise ActivityError(
            f"local activity {activity.__name__} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=activity.__name__,
            activity_id="",
            retry_state=None,
        ) from err


def _local(inp: RunInput, patch: str) -> bool:
    """Replaying, the history says (its patch marker); a replayer's queue is its own. Else
    the queue this workflow runs on, which is the same for every worker that runs it."""
    if workflow.unsafe.is_replaying():
        return workflow.patched(patch)
    return workflow.info().task_queue == inp.host_queue and workflow.patched(patch)
