"""Worker assembly: the shared queue runs workflows, the host queue repo-bound activities."""

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Sequence

from temporalio.client import Client
from temporalio.worker import Worker

from magsag.activities.registry import ALL_ACTIVITIES
from magsag.contracts import constants as C
from magsag.worker import connection
from magsag.workflows import ALL_WORKFLOWS

# Agents are long, mostly idle subprocesses: allow many at once per worker.
MAX_CONCURRENT_ACTIVITIES = 64


def build_workers(
    client: Client,
    host_queue: str,
    task_queue: str | None = None,
    activities: Sequence = ALL_ACTIVITIES,
) -> list[Worker]:
    """Two workers on one client: workflows on the shared queue, activities on this host's."""
    identity = f"{os.getpid()}@{socket.gethostname()}"  # read by cli.runtime: keep the form
    return [
        Worker(
            client,
            task_queue=task_queue or connection.task_queue(),
            workflows=ALL_WORKFLOWS,
            identity=identity,
            sticky_queue_schedule_to_start_timeout=C.STICKY_QUEUE_TIMEOUT,
        ),
        Worker(
            client,
            task_queue=host_queue,
            activities=list(activities),
            max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
            identity=identity,
            graceful_shutdown_timeout=C.HEARTBEAT_INTERVAL,
            max_heartbeat_throttle_interval=C.HEARTBEAT_THROTTLE,
            default_heartbeat_throttle_interval=C.HEARTBEAT_THROTTLE,
        ),
    ]


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, host_queue: str, task_queue: str | None = None
) -> AsyncIterator[None]:
    """Run both workers for the block; leaving it shuts them down (agents are killed)."""
    async with contextlib.AsyncExitStack() as stack:
        for worker in build_workers(client, host_queue, task_queue):
            await stack.enter_async_context(worker)
        yield
