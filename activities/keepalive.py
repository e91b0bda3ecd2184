"""Heartbeats for every activity, so a dead worker costs seconds (invariant 8).

Temporal notices a dead worker only through a missed heartbeat or the activity's
start-to-close timeout. A git activity that holds no heartbeat sits on a dead worker
for its whole timeout; one that heartbeats is retried elsewhere after HEARTBEAT_TIMEOUT.
`heartbeating` runs an activity with a background heartbeat every HEARTBEAT_INTERVAL,
however long its steps take.

The first beat comes an interval after the start, not at it: the server times the
heartbeat timeout from the activity's start, and a beat at once (which the SDK sends
unthrottled) costs the server a write per activity, however short (16 of its 175 for a
run of sixteen one-second tasks: bench/README.md, "The floor").
"""

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

from magsag.contracts import constants as C

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.asynccontextmanager
async def keep_alive() -> AsyncIterator[None]:
    """Heartbeat in the background while the block runs (outside an activity, as in
    `magsag gc`, it does nothing)."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(C.HEARTBEAT_INTERVAL.total_seconds())
            activity.heartbeat()

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


def heartbeating(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an async activity (below @activity.defn) to heartbeat while it runs."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        async with keep_alive():
            return await fn(*args, **kwargs)

    return run
