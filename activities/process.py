"""Agent processes: each runs in its own process group, recorded in a pidfile.

A worker killed with SIGKILL leaves its agent running (re-parented to pid 1); the
pidfile lets the next attempt, or the janitor, find and kill that whole group. The
pidfile stores the group leader's start time too, so a recycled pid is never killed.
"""

import json
import os
import signal
import time
from pathlib import Path


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of pid (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 counts from after the command name, which may contain spaces.
    return int(stat.rsplit(")", 1)[1].split()[19])


def write_pidfile(path: Path, pgid: int, attempt: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pgid": pgid, "start_time": process_start_time(pgid), "attempt": attempt}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)


def kill_group(pgid: int) -> bool:
    """SIGKILL the whole group; True when something was there to kill."""
    try:
        os.killpg(pgid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the group, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_group_and_wait(pgid: int, timeout: float = 5.0) -> bool:
    """SIGKILL the group and wait until none of it runs: a signal is delivered
    asynchronously, and the next attempt must not start beside the last one."""
    killed = kill_group(pgid)
    deadline = time.monotonic() + timeout
    while killed and group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return killed


def kill_recorded_group(path: Path) -> int | None:
    """Kill the group a pidfile names if its leader is still the same process.

    Returns the pgid that was killed, or None. The pidfile is removed either way.
    """
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pgid = int(record.get("pgid", 0))
    leader_start = process_start_time(pgid)
    # A live leader with another start time means the pid was recycled: not ours. A
    # dead leader may still have group members, and its pgid cannot be reused while
    # they live, so the group is killed.
    recycled = leader_start is not None and leader_start != record.get("start_time")
    killed = pgid if pgid > 1 and not recycled and kill_group_and_wait(pgid) else None
    path.unlink(missing_ok=True)
    return killed
