"""The fast path of every `magsag` command: a standing `magsag worker` keeps a warm
process beside it (cli/warm_server.py) with magsag's modules loaded, and a command
started on this host hands itself over to it instead of importing them again (~0.5 s of
imports on 2 cores, against a few ms here). The warm process forks a child that becomes
the command: the user's argv, directory, environment, umask and the command's own
stdin, stdout and stderr (their file descriptors travel over the socket), its exit code
sent back. This module is what the command's own process runs: the standard library
only, nothing that takes time to import.

A command runs in its own process as before when no warm process serves its state dir,
when MAGSAG_NO_WARM is set, or when the warm process runs other code (an upgrade or an
edit since the worker started: each side stamps the code it runs).
"""

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path

from magsag.worker.state_dir import state_dir

# Commands that keep their own process: they run for as long as the user lets them and
# own what they start (a Temporal server, workers, the demo's).
LOCAL_COMMANDS = frozenset({"worker", "server", "demo"})
# Signals a user sends the command (Ctrl-C, a kill, a closed terminal), passed on; Ctrl-Z
# and SIGCONT stop and continue it with this process (_follow).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PACKAGES = ("contracts", "workflows", "activities", "worker", "history", "cli")
ROOT = Path(__file__).resolve().parent.parent  # the folder that holds magsag's packages
_LENGTH = struct.Struct("!I")


def socket_path() -> Path | None:
    """Where the warm process of this state dir listens: in a folder of this user's
    that no one else can open (/tmp/magsag-UID, as tmux does), None if that cannot be."""
    folder = Path(os.environ.get("TMPDIR") or "/tmp") / f"magsag-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # not ours alone: never hand a command over through it
    serves = f"{state_dir()}\0{ROOT}\0{sys.executable}"  # whose commands, with what
    key = hashlib.sha256(serves.encode()).hexdigest()[:24]
    return folder / f"{key}.sock"


def code_stamp() -> str:
    """The code both sides run: every module's path, size and modification time."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for folder, subfolders, files in os.walk(ROOT / package):
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    info = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name} {info.st_size} {info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def run(argv: list[str]) -> int | None:
    """Run the command in the warm process: its exit code. None when none takes it (no
    warm process, other code, a command that stays here): run it in this process."""
    if os.environ.get("MAGSAG_NO_WARM") or (len(argv) > 1 and argv[1] in LOCAL_COMMANDS):
        return None
    path = socket_path()
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A Ctrl-Z from the moment the command may exist (it has our terminal once forked)
    # until its pid is known stops it and this process then (_follow).
    stops: list[int] = []
    signal.signal(signal.SIGTSTP, lambda signum, _frame: stops.append(signum))
    try:
        sock.connect(str(path))
        send_request(sock, _request(argv), fds=(0, 1, 2))
        replies = read_lines(sock)
        started = next(replies, {})
    except OSError:  # none listens, or it went away before taking the command
        started = {}
    if "pid" not in started:  # refused (other code), or none took it: it runs here
        sock.close()
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        if stops:
            os.kill(os.getpid(), signal.SIGTSTP)
        return None
    return _follow(replies, started["pid"], stopped_early=bool(stops))


def _request(argv: list[str]) -> dict:
    umask = os.umask(0o022)
    os.umask(umask)
    env = dict(os.environ)
    return {"stamp": code_stamp(), "argv": argv, "cwd": os.getcwd(), "env": env, "umask": umask}


def _follow(replies: Iterator[dict], pid: int, stopped_early: bool = False) -> int:
    """Pass the user's signals on to the command and wait for its exit code
    (stopped_early: a Ctrl-Z came before the command's pid)."""
    received: list[int] = []

    def forward(signum: int, _frame) -> None:
        received.append(signum)
        _signal_quietly(pid, signum)

    def suspend(_signum, _frame) -> None:
        # Ctrl-Z: the command, in a session of its own, is not in the terminal's job: it
        # stops with this process, and goes on with it (fg, bg: SIGCONT).
        _signal_quietly(pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until continued
        signal.signal(signal.SIGTSTP, suspend)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.signal(signal.SIGTSTP, suspend)
    signal.signal(signal.SIGCONT, lambda _signum, _frame: _signal_quietly(pid, signal.SIGCONT))
    if stopped_early:
        suspend(signal.SIGTSTP, None)
    try:
        for reply in replies:
            if "exit" in reply:
                return reply["exit"]
    except OSError:
        pass
    if received:  # the signal ended the command: end the same way, as a caller sees it
        signal.signal(received[-1], signal.SIG_DFL)
        os.kill(os.getpid(), received[-1])
    sys.stderr.write("magsag: the command's process ended without an exit code\n")
    return 1


def _signal_quietly(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # the command has just ended
        pass


def send_request(sock: socket.socket, request: dict, fds: tuple[int, ...]) -> None:
    """The request, its length first, with the file descriptors on its first bytes."""
    data = json.dumps(request).encode()
    data = _LENGTH.pack(len(data)) + data
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array("i", fds))]
    sent = sock.sendmsg([data], ancillary)
    if sent < len(data):  # an empty send fails on a side that has answered and closed
        sock.sendall(data[sent:])


def receive_request(sock: socket.socket) -> tuple[dict, list[int]]:
    """A request and the file descriptors that came with it (the caller closes them)."""
    data, fds, _flags, _address = socket.recv_fds(sock, 65536, 8)
    try:
        while len(data) < _LENGTH.size:
            data += _received(sock)
        end = _LENGTH.size + _LENGTH.unpack_from(data)[0]
        while len(data) < end:
            data += _received(sock)
        return json.loads(data[_LENGTH.size : end]), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the request ended early")
    return chunk


def send_line(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def read_lines(sock: socket.socket) -> Iterator[dict]:
    """The JSON messages of one line each, until the other side closes."""
    buffer = b""
    while chunk := sock.recv(4096):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)
