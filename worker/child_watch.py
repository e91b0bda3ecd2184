"""How asyncio learns that a subprocess ended, in a process that runs activities.

Python 3.11's default watcher starts a thread per subprocess and, on the event loop,
waits for that thread to start: with a dozen git commands per task, about a tenth of a
worker's event loop went there (py-spy), stalling every other activity and workflow
task meanwhile. A pidfd needs no thread: the loop is told when the process exits, and
reaps it then. This is the watcher Python 3.12 makes the default (any running loop,
not one attached beforehand, so the tests' loops each work too).
"""

import asyncio
import logging
import os

log = logging.getLogger(__name__)


class PidfdWatcher(asyncio.AbstractChildWatcher):
    def add_child_handler(self, pid, callback, *args):
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

    @staticmethod
    def _reap(loop, pid, pidfd, callback, args) -> None:
        loop.remove_reader(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere
            code = 255
            log.warning("exit status of child process %d already read: 255 reported", pid)
        else:
            code = os.waitstatus_to_exitcode(status)
        os.close(pidfd)
        callback(pid, code, *args)

    def remove_child_handler(self, pid) -> bool:
        return True

    def attach_loop(self, loop) -> None:
        pass

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def use_pidfds() -> None:
    """Watch this process's subprocesses through pidfds, when the kernel has them."""
    if isinstance(asyncio.get_child_watcher(), PidfdWatcher):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):  # before Linux 5.3: keep the thread per subprocess
        return
    asyncio.set_child_watcher(PidfdWatcher())
