"""The warm process `magsag worker` keeps beside it (`--warm-cli`, on by default): every
module of magsag loaded once, and a child forked for each `magsag` command started on
this host with the worker's state dir (cli/warm.py hands it over). The child becomes the
command in the user's directory and environment, on the user's stdin, stdout and stderr.

It serves the user it runs as alone (a folder only they can open, and the peer's uid
checked), ends with the worker (its parent), and leaves its socket to the next one.
"""

import contextlib
import importlib
import io
import logging
import os
import pkgutil
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from magsag.cli import warm

log = logging.getLogger("magsag.warm")
REQUEST_TIMEOUT_S = 5.0  # a client that connects and says nothing does not hold us up
PARENT_CHECK_S = 1.0


class _Stop(Exception):
    pass


class _Children:
    """The commands' processes this one forked, each with this side's copy of its client's
    connection. A command stopped with its client (Ctrl-Z, cli/warm.py) cannot see the
    client die: when a stopped client is killed, this continues the command, which then
    sees its client gone and ends (_end_with_client)."""

    def __init__(self) -> None:
        # pidfd -> a bare duplicate of the client's connection (os.dup: socket.dup would
        # set the timeout, and with it the blocking mode the command shares), or None
        self._clients: dict[int, int | None] = {}

    def add(self, pid: int, conn: socket.socket) -> None:
        with contextlib.suppress(ProcessLookupError):  # gone already: nothing to watch
            self._clients[os.pidfd_open(pid)] = os.dup(conn.fileno())

    def __bool__(self) -> bool:
        return bool(self._clients)

    def watched(self) -> list[int]:
        return [*self._clients, *(fd for fd in self._clients.values() if fd is not None)]

    def check(self, ready: list) -> None:
        for pidfd, client in list(self._clients.items()):
            if pidfd in ready:  # the command ended
                self._drop(pidfd)
            elif client is not None and client in ready:  # the client ended: nothing else comes
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGCONT)
                os.close(client)
                self._clients[pidfd] = None

    def forget(self) -> None:
        """In a child: these are the warm process's, not the command's."""
        for pidfd in list(self._clients):
            self._drop(pidfd)

    def _drop(self, pidfd: int) -> None:
        client = self._clients.pop(pidfd)
        if client is not None:
            os.close(client)
        os.close(pidfd)


def spawn() -> subprocess.Popen | None:
    """Start the warm process of this state dir beside this one (the worker)."""
    path = warm.socket_path()
    if path is None:
        log.warning("no private folder for the warm CLI's socket: commands start cold")
        return None
    argv = [sys.executable, "-m", "magsag.cli.warm_server", str(path), str(os.getpid())]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL)


def preload() -> None:
    """Import every module of magsag, so that no command imports one again."""
    for package in warm.PACKAGES:
        module = importlib.import_module(f"magsag.{package}")
        for found in pkgutil.walk_packages(module.__path__, f"magsag.{package}."):
            if found.name != __spec__.name:
                importlib.import_module(found.name)


def serve(path: Path, parent: int) -> None:
    def _stop(_signum, _frame) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C on the worker's terminal
    try:
        stamp = warm.code_stamp()  # before the imports: an edit meanwhile makes it stale
        preload()
        # Another one serves these commands (a second worker, or the one of a worker
        # that died a moment ago, ending): stand by and take over when it ends.
        while (listener := _listen(path)) is None:
            if os.getppid() != parent:
                return
            time.sleep(PARENT_CHECK_S)
        ours = os.stat(path).st_ino
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        log.debug("warm CLI ready on %s, pid %d", path, os.getpid())
        children = _Children()
        try:
            while os.getppid() == parent:
                ready = select.select([listener, *children.watched()], [], [], PARENT_CHECK_S)[0]
                children.check(ready)
                if listener in ready:
                    _take(listener, stamp, children)
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == ours:  # not yet the next one's
                    os.unlink(path)
        _see_out(children)
    except _Stop:
        pass


def _see_out(children: _Children) -> None:
    """Its worker gone, stay (taking no more commands) until the commands started here
    end: one stopped with its client (Ctrl-Z) would stay stopped for good if its client
    died with no one left to continue it (_Children.check)."""
    while children:
        children.check(select.select(children.watched(), [], [], None)[0])


def _listen(path: Path) -> socket.socket | None:
    """Listen on path; None while another warm process answers there."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
    except OSError:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            listener.close()
            return None
        except OSError:  # a socket left by one that died
            path.unlink(missing_ok=True)
            listener.bind(str(path))
        finally:
            probe.close()
    os.chmod(path, 0o600)
    listener.listen(16)
    return listener


def _take(listener: socket.socket, stamp: str, children: _Children) -> None:
    """Accept one command and fork the child that runs it."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    fds: list[int] = []
    try:
        if not _same_user(conn):
            return
        conn.settimeout(REQUEST_TIMEOUT_S)
        request, fds = warm.receive_request(conn)
        if len(fds) != 3:  # the client always sends its stdin, stdout and stderr
            warm.send_line(conn, {"refused": "a command comes with three descriptors"})
            log.warning("warm CLI: refused a request with %d file descriptors", len(fds))
            return
        if request.get("stamp") != stamp:
            warm.send_line(conn, {"refused": "this warm process runs other code"})
            log.info("warm CLI: magsag's code changed since it started; commands start cold "
                     "until `magsag worker` is restarted")  # fmt: skip
            return
        pid = os.fork()
        if pid == 0:
            children.forget()
            _become(conn, listener, fds, request)  # does not return
        children.add(pid, conn)
        log.debug("warm CLI: magsag %s", " ".join(request["argv"][1:2]))
    except Exception as err:  # one bad request never ends the warm process
        log.warning("warm CLI: a command could not be taken: %r", err)
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):  # the folder's permissions alone
        return True
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


def _become(conn: socket.socket, listener: socket.socket, fds: list[int], request: dict):
    """In the child: become the user's command, then exit with its code."""
    code = 1
    try:
        listener.close()
        os.setsid()  # its own session: signals to the worker's group or terminal pass it by
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _reopen_stdio()
        logging.root.handlers.clear()  # the warm process's; the command sets up its own
        logging.root.setLevel(logging.WARNING)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(request["umask"])
        sys.argv = request["argv"]
        from magsag.cli import app, console

        console.renew()
        conn.settimeout(None)
        warm.send_line(conn, {"pid": os.getpid()})
        threading.Thread(target=_end_with_client, args=(conn,), daemon=True).start()
        code = app.run(sys.argv)
        sys.stdout.flush()
        sys.stderr.flush()
        warm.send_line(conn, {"exit": code})
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _reopen_stdio() -> None:
    """sys.stdin/stdout/stderr on the user's descriptors, buffered as Python does."""
    encoding, errors = sys.stdout.encoding, sys.stdout.errors

    def stream(fd: int, **options) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, encoding=encoding, **options)

    sys.stdin = sys.__stdin__ = stream(0, errors=errors)
    sys.stdout = sys.__stdout__ = stream(1, errors=errors, line_buffering=os.isatty(1))
    sys.stderr = sys.__stderr__ = stream(2, errors="backslashreplace", line_buffering=True)


def _end_with_client(conn: socket.socket) -> None:
    """The user's process died (killed): so does the command, as it would have."""
    try:
        conn.recv(1)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    from magsag.worker.logs import configure_logging

    configure_logging()
    serve(Path(sys.argv[1]), int(sys.argv[2]))


if __name__ == "__main__":
    main()
