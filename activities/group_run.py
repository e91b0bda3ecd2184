"""Run one process of an attempt in its own process group, heartbeating until it ends.

The group is killed however the wait ends: exit, timeout, cancellation or worker
shutdown (invariant 4). Its output is read from pipes into the capped log (see
agent_output); with a parser, stdout also becomes events, and an agent that keeps
running after its final result message is stopped as hung. Once the process has exited,
a pipe that stays open and silent is held by something it left behind: the wait ends
after a short grace, and everything carrying the attempt's marker is killed.
"""

import asyncio
import contextlib
import os
import time
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities.agent_output import CappedLog, Pump
from magsag.activities.process import kill_group, kill_marked, write_pidfile
from magsag.contracts import constants as C
from magsag.contracts.failures import FailureKind

# How long an agent may keep running after printing its final result, and its output
# stay open after it exited; the worker's MAGSAG_RESULT_EXIT_GRACE (seconds) overrides it.
RESULT_EXIT_GRACE_SECONDS = 30.0
# How long the pipes of a process that has exited may stay open with nothing in them.
EXITED_OUTPUT_GRACE_SECONDS = 2.0
# After the kill, how long an open pipe may stay silent before it is no longer read.
KILLED_OUTPUT_GRACE_SECONDS = 0.5
OUTPUT_POLL_SECONDS = 0.1


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
    log: CappedLog,
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
            stdout=asyncio.subprocess.PIPE,
            # An agent's stderr is not part of its JSON stream; a command's goes with stdout.
            stderr=asyncio.subprocess.PIPE if parser else asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as err:
        why = "not found" if isinstance(err, FileNotFoundError) else "not runnable"
        raise ApplicationError(
            f"runner executable {why}: {argv[0]}",
            type=FailureKind.RUNNER_NOT_FOUND,
            non_retryable=True,
        ) from None
    marker = env.get(C.ENV_ATTEMPT_ID)
    write_pidfile(pidfile, proc.pid, attempt, marker)
    pumps = [Pump(proc.stdout, log, parser, events_path, attempt)]
    if parser:
        pumps.append(Pump(proc.stderr, log))
    reading = {asyncio.create_task(pump.run()): pump for pump in pumps}
    feeding = asyncio.create_task(_feed_stdin(proc, stdin))
    try:
        return await _wait(proc, reading, parser, attempt, deadline)
    finally:
        # Whatever ended the wait, nothing of this attempt may outlive it.
        kill_group(proc.pid)
        feeding.cancel()
        await _finish_reading(reading, marker)


async def _wait(proc, reading: dict, parser, attempt: int, deadline: float) -> int:
    """Heartbeat until the process has exited and its output is read, or held open.

    proc.wait() is no use here: asyncio answers it only once every pipe is closed, which
    a child left behind can put off forever.
    """
    result_seen_at = exited_at = None
    grace = result_exit_grace()
    # None at the start: the server counts the start as one (activities/keepalive.py).
    first_beat = time.monotonic() + C.HEARTBEAT_INTERVAL.total_seconds()
    with _exit_watch(proc.pid) as exited:
        while True:
            if time.monotonic() >= first_beat:
                activity.heartbeat({"pgid": proc.pid, "attempt": attempt})
            for task in reading:
                if task.done() and task.exception():
                    raise task.exception()  # a pipe no longer read would block the agent
            now = time.monotonic()
            if now >= deadline:
                raise DeadlineReached
            interval = min(C.HEARTBEAT_INTERVAL.total_seconds(), deadline - now)
            if proc.returncode is None:
                if parser and parser.saw_result:
                    result_seen_at = result_seen_at or now
                    if now - result_seen_at > grace:
                        raise HungAfterResult
                if exited.is_set():
                    await asyncio.sleep(0.01)  # asyncio's child watcher reaps it in a moment
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(exited.wait(), interval)
                continue
            exited_at = exited_at or now
            if now - exited_at > grace or _output_ended(reading, now, EXITED_OUTPUT_GRACE_SECONDS):
                return proc.returncode
            await asyncio.wait(list(reading), timeout=min(interval, OUTPUT_POLL_SECONDS))


@contextlib.contextmanager
def _exit_watch(pid: int):
    """An event set as soon as the process exits, through its pidfd. Without pidfds it is
    never set, and the exit is noticed at the next heartbeat instead."""
    exited = asyncio.Event()
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # it has already exited and been reaped
        exited.set()
        yield exited
        return
    except OSError:
        yield exited
        return
    loop = asyncio.get_running_loop()
    loop.add_reader(pidfd, exited.set)
    try:
        yield exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _output_ended(reading: dict, now: float, silent_for: float) -> bool:
    """Every pipe is at its end, or has waited `silent_for` seconds with nothing in it."""
    return all(task.done() or pump.idle_for(now) >= silent_for for task, pump in reading.items())


async def _finish_reading(reading: dict, marker: str | None) -> None:
    """Read the rest of the output. A pipe still open once the group is dead is held by
    a process that left the group: everything carrying the attempt's marker is killed,
    and a pipe that even then stays open and silent is no longer read."""
    try:
        if not all(task.done() for task in reading) and marker:
            await asyncio.to_thread(kill_marked, marker)
        while not _output_ended(reading, time.monotonic(), KILLED_OUTPUT_GRACE_SECONDS):
            await asyncio.wait(list(reading), timeout=OUTPUT_POLL_SECONDS)
    finally:
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes) -> None:
    try:
        if data:
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent does not read stdin; the prompt is also in argv and env
