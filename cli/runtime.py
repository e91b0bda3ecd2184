"""What a CLI command needs around it: a reachable server and, if none polls, a worker."""

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from magsag.cli.console import fail, info
from magsag.contracts import constants as C
from magsag.worker import connection
from magsag.worker.devserver import DevServer, DevServerError

T = TypeVar("T")

# A live worker long-polls about once a minute; older pollers are taken as gone.
POLLER_FRESHNESS = timedelta(seconds=75)


def run_sync(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), for commands whose answer is big (a run's state or view).

    Python 3.11's asyncio.run, restoring the SIGINT handler on its way out, builds a
    message holding the repr of its main task and so of the task's result: 0.4 s for a
    10,000-task run's state. The result is kept out of the main task instead."""
    answer: list[T] = []

    async def keep() -> None:
        answer.append(await main)

    asyncio.run(keep())
    return answer[0]


def embedded_server() -> DevServer:
    return DevServer(db=connection.state_dir() / "temporal.db")


def web_ui_link(run_id: str) -> str | None:
    """Where the embedded server's Web UI shows the run (None for a configured server)."""
    if connection.is_configured():
        return None
    workflow_id = C.plan_workflow_id(run_id)
    return f"{embedded_server().ui_url}/namespaces/{C.DEFAULT_NAMESPACE}/workflows/{workflow_id}"


def ensure_server() -> None:
    """Start the embedded dev server in the background when nothing is configured or up."""
    if connection.is_configured():
        return
    server = embedded_server()
    if connection.reachable(server.address):
        return
    log_path = connection.state_dir() / "server.log"
    info(
        f"starting the embedded Temporal server on {server.address} in the background "
        f"(log: {log_path}, pid in server.pid beside it)"
    )
    proc = server.start(log_path, detach=True)
    (connection.state_dir() / "server.pid").write_text(f"{proc.pid}\n")
    server.wait_ready(proc, log_path)
    info(f"Temporal Web UI: {server.ui_url}")


async def connect_or_exit(start_embedded: bool) -> Client:
    """A client for the configured server; `run` may start the embedded one first."""
    try:
        if start_embedded:
            await asyncio.to_thread(ensure_server)
        return await connection.connect()
    except (DevServerError, RuntimeError) as err:
        address = connection.connect_config()["target_host"]
        raise fail(f"cannot reach Temporal at {address}: {err}") from None


async def ensure_search_attributes(client: Client) -> None:
    """Register magsag's search attributes where they are missing (a server started
    by an older magsag, or a self-hosted one); a server that refuses gets a clear
    error instead of a failed start."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in C.SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    except RPCError as err:
        names = ", ".join(missing)
        raise fail(f"the server lacks magsag's search attributes ({names}): {err}") from None


# Where a worker hosted by a command (run, watch, resume, approve...) writes its log.
WORKER_LOG = "worker.log"


async def has_poller(client: Client, queue: str, kind: TaskQueueType.ValueType) -> bool:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
        )
    )
    now = datetime.now(UTC)
    return any(
        now - poller.last_access_time.ToDatetime(tzinfo=UTC) < POLLER_FRESHNESS
        and _poller_process_alive(poller.identity)
        for poller in response.pollers
    )


def _poller_process_alive(identity: str) -> bool:
    """The server lists a worker's pollers for a while after it exited. Worker
    identities are "<pid>@<host>", so a poller of this host is checked for a live pid;
    one on another host is believed while fresh."""
    pid, _, host = identity.partition("@")
    if host.split(" ")[0] != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def workers_present(client: Client, run_queue: str) -> bool:
    """Whether a worker polls the queue of a run's workflows and activities."""
    return await has_poller(
        client, run_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    ) and await has_poller(client, run_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


@contextlib.asynccontextmanager
async def worker_if_needed(
    client: Client, run_queue: str, quiet: bool = False
) -> AsyncIterator[bool]:
    """Run workers in this process while the block runs, unless some already poll the
    queue of the run's workflow and steps, or it is another host's (that host's worker
    alone can run them: this says so)."""
    here, shared = C.host_queue(connection.hostname()), connection.task_queue()
    # A run an earlier version started has its workflow on the shared queue and its
    # steps on its host's: this host's, as before.
    host_queue = here if run_queue == shared else run_queue
    if await workers_present(client, host_queue):
        yield False
        return
    if host_queue not in (here, C.any_host_queue(shared)):
        info(
            f"no magsag worker polls {host_queue}, the queue of the host that holds the "
            "run's repository: start `magsag worker` on that host (this one cannot run "
            "its steps)"
        )
        yield False
        return
    log = connection.state_dir() / WORKER_LOG
    if not quiet:
        info(f"no magsag worker is polling; running one in this process while it waits ({log})")
    from magsag.worker.assembly import running_workers  # only this path needs a worker
    from magsag.worker.logs import configure_logging

    # Its records would break into the command's own output. A bad MAGSAG_LOG_LEVEL or a
    # log that cannot be written leaves the worker to Python's defaults.
    with contextlib.suppress(ValueError, OSError):
        configure_logging(file=log)
    async with running_workers(client, host_queue):
        yield True
