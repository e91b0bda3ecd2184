"""How many agents one worker runs at once: `magsag worker --max-agents N`.

The cap is on the agents, not on the worker's activities: the git steps of other tasks
and the waits for tasks of an earlier execution (await_task) must never queue behind
agents, or a worker full of waiting tasks could not merge the ones that finished. An
attempt past the cap waits here, on this worker, before its worktree is made; its
timeout counts from the moment it gets a slot.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

_slots: asyncio.Semaphore | None = None


def limit(max_agents: int | None) -> None:
    """Cap this process's agents (None: no cap); set once, before the worker starts."""
    global _slots
    _slots = asyncio.Semaphore(max_agents) if max_agents else None


@contextlib.asynccontextmanager
async def agent_slot(task: str) -> AsyncIterator[None]:
    if _slots is None:
        yield
        return
    if _slots.locked():
        activity.logger.info("task %s waits for one of this worker's agent slots", task)
    async with _slots:
        yield
