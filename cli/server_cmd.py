"""`magsag server` (the embedded dev server) and `magsag worker`; both log as
worker/logs.py sets up (MAGSAG_LOG_LEVEL)."""

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from magsag.cli.console import fail, info
from magsag.contracts import constants as C
from magsag.worker import connection
from magsag.worker.devserver import DevServer, DevServerError
from magsag.worker.logs import configure_logging


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


def worker() -> None:
    """Run a magsag worker: workflows on the shared queue, activities on this host's queue."""
    _configure_logging()
    asyncio.run(_serve())


def _configure_logging() -> None:
    try:
        configure_logging()
    except ValueError as err:
        raise fail(str(err)) from None


async def _serve() -> None:
    address = connection.connect_config()["target_host"]
    try:
        client = await connection.connect()
    except RuntimeError as err:
        raise fail(f"cannot reach Temporal at {address}: {err}") from None
    host_queue = C.host_queue(connection.hostname())
    info(
        f"worker on {address} polling '{connection.task_queue()}' and '{host_queue}' (Ctrl-C stops)"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from magsag.worker.assembly import running_workers  # only this command runs workers

    async with running_workers(client, host_queue):
        await stop.wait()
    info("worker stopped")
