"""`magsag server` (the embedded dev server) and `magsag worker`; both log as
worker/logs.py sets up (MAGSAG_LOG_LEVEL)."""

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client
from temporalio.service import RPCError

from magsag.cli import warm_server
from magsag.cli.console import fail, info
from magsag.cli.runtime import workers_present
from magsag.contracts import constants as C
from magsag.worker import connection
from magsag.worker.devserver import DevServer, DevServerError
from magsag.worker.logs import configure_logging

POLLERS_SEEN_WITHIN_S = 10.0  # a server slow to list them: the worker says so anyway


def server(
    port: Annotated[int, typer.Option(help="gRPC port of the server.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal Web UI.")] = C.DEFAULT_UI_PORT,
    db: Annotated[
        Path | None,
        typer.Option(help="SQLite database file (default: <state>/temporal.db)."),
    ] = None,
) -> None:
    """Run the embedded Temporal dev server in the foreground (SQLite, Web UI)."""
    _configure_logging()
    dev = DevServer(
        db=(db or connection.state_dir() / "temporal.db").resolve(), port=port, ui_port=ui_port
    )
    if connection.reachable(dev.address):
        raise fail(f"something already listens on {dev.address}")
    log_path = connection.state_dir() / "server.log"
    try:
        proc = dev.start(log_path, detach=False)
        dev.wait_ready(proc, log_path)
    except DevServerError as err:
        raise fail(str(err)) from None
    info(f"Temporal server on {dev.address}, database {dev.db}")
    info(f"Web UI: {dev.ui_url}   (Ctrl-C stops the server; runs resume when it is back)")
    # Stopping magsag stops the server: forward SIGTERM as well as Ctrl-C, or the
    # server would live on without us.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    code = proc.wait()
    raise typer.Exit(code if code and code > 0 else 0)


def worker(
    host: Annotated[
        str | None,
        typer.Option(
            envvar="MAGSAG_HOST",
            help="Name of this host: the queue of its runs' workflows and activities is "
            "magsag-host-NAME "
            "(default: the machine's host name).",
        ),
    ] = None,
    max_agents: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run at most N agents at once; more attempts wait on this worker "
            "(default: no cap but the runs' --concurrency).",
        ),
    ] = None,
    warm_cli: Annotated[
        bool,
        typer.Option(
            "--warm-cli/--no-warm-cli",
            help="Keep magsag's modules loaded in a process beside the worker: `magsag` "
            "commands started on this host with this state dir then begin at once "
            "instead of importing them (~0.5 s). MAGSAG_NO_WARM=1 keeps a command cold.",
        ),
    ] = True,
) -> None:
    """Run a magsag worker for this host's runs and for runs on remote URLs.

    The workflows and activities of runs on this host's repositories
    come from its queue, those of runs on remote URLs from any host's;
    the shared queue keeps those that earlier versions started there."""
    _configure_logging()
    if host is not None:
        if not host.strip() or "/" in host:
            raise fail(f"--host {host!r}: give a name without '/'")
        os.environ["MAGSAG_HOST"] = host  # what connection.hostname() and the logs read
    from magsag.activities import agent_slots  # only this command runs agents

    agent_slots.limit(max_agents)
    warm = warm_server.spawn() if warm_cli else None
    try:
        asyncio.run(_serve(max_agents))
    finally:
        if warm is not None:  # it ends at once, removing its socket; no need to wait
            warm.terminate()


def _configure_logging() -> None:
    try:
        configure_logging()
    except ValueError as err:
        raise fail(str(err)) from None


async def _serve(max_agents: int | None) -> None:
    address = connection.connect_config()["target_host"]
    try:
        client = await connection.connect()
    except RuntimeError as err:
        raise fail(f"cannot reach Temporal at {address}: {err}") from None
    host_queue = C.host_queue(connection.hostname())
    cap = f", at most {max_agents} agents at once" if max_agents else ""
    queues = [connection.task_queue(), host_queue, C.any_host_queue(connection.task_queue())]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from magsag.worker.assembly import running_workers  # only this command runs workers

    async with running_workers(client, host_queue):
        await _until_the_server_sees(client, host_queue, stop)
        info(
            f"worker {connection.hostname()} on {address} polling "
            + ", ".join(f"'{queue}'" for queue in queues)
            + f"{cap} (Ctrl-C stops)"
        )
        await stop.wait()
    info("worker stopped")


async def _until_the_server_sees(client: Client, host_queue: str, stop: asyncio.Event) -> None:
    """Wait for the server to list this worker's pollers: once the worker says it polls,
    a `magsag run` started on this host finds it (a warm command asks in ~0.1 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLLERS_SEEN_WITHIN_S
    while not stop.is_set() and loop.time() < deadline:
        with contextlib.suppress(RPCError):  # a busy server: ask again, the worker polls on
            if await workers_present(client, host_queue):
                return
        await asyncio.sleep(0.05)
