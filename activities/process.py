"""Agent processes: each runs in its own process group, recorded in a pidfile.

A worker killed with SIGKILL leaves its agent running (re-parented to pid 1); the
pidfile lets the next attempt, or the janitor, find and kill that whole group. The
pidfile stores the group leader's start time too, so a recycled pid is never killed.

A process can leave the group (`setsid`, a double fork), but not the environment it
inherited: every process of an attempt carries the attempt's MAGSAG_ATTEMPT_ID, which
the pidfile records too, and is found through /proc/<pid>/environ.
"""

import json
import os
import signal
import time
from pathlib import Path

from magsag.contracts import constants as C


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of pid (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 counts from after the command name, which may contain spaces.
    return int(stat.rsplit(")", 1)[1].split()[19])


def write_pidfile(path: Path, pgid: int, attempt: int, marker: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pgid": pgid, "start_time": process_start_time(pgid), "attempt": attempt}
    if marker:
        record["marker"] = marker
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


def marked_processes(marker: str) -> list[int]:
    """Live processes (not this one) whose environment carries MAGSAG_ATTEMPT_ID=marker."""
    entry = _entry(marker)
    return [pid for pid in _pids() if pid != os.getpid() and _carries(pid, entry)]


def kill_marked(marker: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of the attempt, wherever it went, until none is left (a
    process may fork between a scan and its kill; the next scan finds the child).
    Returns the pids killed."""
    entry = _entry(marker)
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while (found := marked_processes(marker)) and time.monotonic() < deadline:
        killed.update(pid for pid in found if _kill_if_carrying(pid, entry))
        time.sleep(0.01)
    return sorted(killed)


def _entry(marker: str) -> bytes:
    """The variable as it sits in /proc/<pid>/environ, between NUL bytes."""
    return f"\0{C.ENV_ATTEMPT_ID}={marker}\0".encode()


def _pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def _carries(pid: int, entry: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()  # empty for a zombie
    except OSError:
        return False  # gone, or another user's
    return entry in b"\0" + environ


def _kill_if_carrying(pid: int, entry: bytes) -> bool:
    """Kill pid if it still carries the entry. The pidfd pins the process, so a pid
    recycled between the check and the signal is never hit."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if not _carries(pid, entry):
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(pidfd)


def kill_recorded_group(path: Path) -> int | None:
    """Kill the group a pidfile names if its leader is still the same process, and every
    process that carries the recorded attempt's marker.

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
    if record.get("marker"):
        kill_marked(record["marker"])
    path.unlink(missing_ok=True)
    return killed
