"""A git remote over the network for tests: bare repositories served by `git daemon`
on 127.0.0.1 (git://), pushes allowed unless the daemon is read-only."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.support.gitrepo import git_out, make_repo
from tests.support.poll import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GitDaemon:
    """Serves every bare repository under `root` as git://127.0.0.1:<port>/<name>."""

    def __init__(self, root: Path, writable: bool = True) -> None:
        self.root = root
        self.port = free_port()
        args = ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                f"--port={self.port}", f"--base-path={root}", str(root)]  # fmt: skip
        if writable:
            args.insert(2, "--enable=receive-pack")
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._listening, timeout=20, interval=0.05, what="git daemon to listen")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)


def bare_remote(root: Path, name: str = "remote.git", files: dict | None = None) -> Path:
    """A bare repository with one commit on main, and the user's clone of it beside."""
    seed = make_repo(root / f"{name}.seed", files)
    bare = root / name
    git_out(root, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def refs(bare: Path, prefix: str = "refs/") -> dict[str, str]:
    """The remote's refs under prefix: name -> object."""
    listed = git_out(bare, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split() for line in listed.splitlines())
