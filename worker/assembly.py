"""Worker assembly: a run's workflows and activities share one queue, its host's for a run
on a path and the any-host one for a run on a URL, so the server hands each activity to
this worker in the reply to the workflow task that scheduled it (eager dispatch), with no
trip through matching. The shared queue still runs workflows: runs started by versions
that put them there.

Workflows run outside Temporal's sandbox: it cost about a third of the worker's CPU for
each task (a sandbox built per workflow started, and a call into it for every payload of
every workflow task), and guarded only plan.py and task.py themselves, the modules they
use being passed through it. The replay tests (tests/workflows/test_replay.py) still run
every recorded history through the sandbox."""

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Sequence

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from magsag.activities.registry import ALL_ACTIVITIES
from magsag.contracts import constants as C
from magsag.worker import child_watch, connection
from magsag.workflows.registry import ALL_WORKFLOWS

# Agents are long, mostly idle subprocesses: allow many at once per worker.
MAX_CONCURRENT_ACTIVITIES = 64


def worker_identity() -> str:
    """The identity "<pid>@<machine>", and the host's name when --host gave it another one: what
    history shows for each attempt, and cli.runtime reads (keep the form)."""
    machine, host = socket.gethostname(), connection.hostname()
    return f"{os.getpid()}@{machine}" + (f" host={host}" if host != machine else "")


def build_workers(
    client: Client,
    host_queue: str,
    task_queue: str | None = None,
    activities: Sequence = ALL_ACTIVITIES,
) -> list[Worker]:
    """Workers on one client: workflows and activities on this host's queue and on the one
    of runs on remote URLs, which any host may take; workflows alone on the shared queue."""
    identity = worker_identity()
    shared = task_queue or connection.task_queue()
    return [
        Worker(
            client,
            task_queue=shared,
            workflows=ALL_WORKFLOWS,
            workflow_runner=UnsandboxedWorkflowRunner(),
            identity=identity,
            sticky_queue_schedule_to_start_timeout=C.STICKY_QUEUE_TIMEOUT,
        ),
        *(
            Worker(
                client,
                task_queue=queue,
                workflows=ALL_WORKFLOWS,
                workflow_runner=UnsandboxedWorkflowRunner(),
                sticky_queue_schedule_to_start_timeout=C.STICKY_QUEUE_TIMEOUT,
                activities=list(activities),
                max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
                identity=identity,
                graceful_shutdown_timeout=C.HEARTBEAT_INTERVAL,
                max_heartbeat_throttle_interval=C.HEARTBEAT_THROTTLE,
                default_heartbeat_throttle_interval=C.HEARTBEAT_THROTTLE,
            )
            for queue in dict.fromkeys((host_queue, C.any_host_queue(shared)))
        ),
    ]


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, host_queue: str, task_queue: str | None = None
) -> AsyncIterator[None]:
    """Run the workers for the block; leaving it shuts them down (agents are killed)."""
    child_watch.use_pidfds()
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, host_queue, task_queue):
            await stack.enter_async_context(worker)
        yield
