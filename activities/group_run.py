"""Run one process of an attempt in its own process group, heartbeating until it ends.

The group is killed however the wait ends: exit, timeout, cancellation or worker
shutdown (invariant 4). With a parser, stdout is read line by line: raw lines go to
the log, the parser's events to the task's JSONL file, and an agent that keeps running
after its final result message is stopped as hung.
"""

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities.process import kill_group, write_pidfile
from magsag.contracts import constants as C

# How long an agent may keep running after printing its final result; the worker's
# MAGSAG_RESULT_EXIT_GRACE (seconds) overrides it.
RESULT_EXIT_GRACE_SECONDS = 30.0


def result_exit_grace() -> float:
    return float(os.environ.get("MAGSAG_RESULT_EXIT_GRACE", RESULT_EXIT_GRACE_SECONDS))


class DeadlineReached(Exception):
    """The task's timeout ran out while a process of the attempt was running."""


class HungAfterResult(Exception):
    """The agent printed its final result but did not exit."""


async def run_in_group(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    log: BinaryIO,
    pidfile: Path,
    attempt: int,
    deadline: float,
    stdin: bytes = b"",
    parser=None,
    events_path: Path | None = None,
) -> int:
    """Run argv to its end and return its exit code."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if parser else log,
            stderr=log,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as err:
        why = "not found" if isinstance(err, FileNotFoundError) else "not runnable"
        raise ApplicationError(
            f"runner executable {why}: {argv[0]}", type="RunnerNotFound", non_retryable=True
        ) from None
    write_pidfile(pidfile, proc.pid, attempt)
    reader = None
    if parser:
        reader = asyncio.create_task(_read_stream(proc, parser, log, events_path, attempt))
    try:
        await _feed_stdin(proc, stdin)
        result_seen_at, grace = None, result_exit_grace()
        while True:
            activity.heartbeat({"pgid": proc.pid, "attempt": attempt})
            now = time.monotonic()
            if now >= deadline:
                raise DeadlineReached
            if parser and parser.saw_result:
                result_seen_at = result_seen_at or now
                if now - result_seen_at > grace:
                    raise HungAfterResult
            try:
                interval = min(C.HEARTBEAT_INTERVAL.total_seconds(), deadline - now)
                code = await asyncio.wait_for(asyncio.shield(proc.wait()), interval)
                if reader:
                    await reader  # the rest of stdout, up to EOF
                return code
            except TimeoutError:
                continue
    finally:
        # Whatever ended the wait, nothing of this attempt may outlive it.
        kill_group(proc.pid)
        if reader and not reader.done():
            reader.cancel()


async def _read_stream(proc, parser, log: BinaryIO, events_path: Path | None, attempt: int):
    events = events_path.open("a") if events_path else None
    try:
        async for raw in proc.stdout:
            log.write(raw)
            log.flush()
            for event in parser.feed(raw.decode(errors="replace")):
                if events:
                    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
                    events.write(json.dumps({"at": stamp, "attempt": attempt, **event}) + "\n")
                    events.flush()
    finally:
        if events:
            events.close()


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
    try:
        if data:
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent does not read stdin; the prompt is also in argv and env
