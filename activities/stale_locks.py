"""Lock files a killed git left behind, recognised and removed.

git takes `<file>.lock` (index.lock, a ref's lock, packed-refs.lock) before it changes
a file and removes it when done. A git killed mid-way, with its worker or inside an
agent's process group, leaves the lock behind and every later git call on that file
fails with "Unable to create '<path>.lock': File exists." until someone removes it.
A lock is stale when no process holds it open (git keeps a lock's descriptor open
while it writes) and it is older than a running git needs between writing and
renaming it; only then is it removed.
"""

import os
import re
import time
from pathlib import Path

# git closes a lock file a moment before it renames it into place.
STALE_LOCK_AGE_SECONDS = 2.0

_LOCK_IN_USE = re.compile(r"Unable to create '(?P<path>[^']+\.lock)': File exists")


def lock_in_the_way(stderr: str) -> Path | None:
    """The lock file a failed git command names, if a lock stopped it."""
    found = _LOCK_IN_USE.search(stderr)
    return Path(found["path"]) if found else None


def held_open(path: Path) -> bool:
    """Whether a process this user can see has `path` open (read from /proc)."""
    target = os.path.realpath(path)
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue  # gone, or not ours to read
        if any(_link(fd) == target for fd in fds):
            return True
    return False


def _link(fd: Path) -> str | None:
    try:
        return os.readlink(fd)
    except OSError:
        return None  # closed meanwhile


def remove_if_stale(lock: Path) -> bool:
    """Remove `lock` when nothing uses it any more; True when it is gone now."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True  # released meanwhile
    if age < STALE_LOCK_AGE_SECONDS or held_open(lock):
        return False
    lock.unlink(missing_ok=True)
    return True
