"""Runs on a remote URL: a bare repository served by `git daemon` on 127.0.0.1, and
workers as hosts, each with its own --host name and state dir (so its own clone)."""

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.gitdaemon import GitDaemon, bare_remote
from tests.support.gitrepo import git_out


@dataclass
class Remote:
    url: str
    bare: Path
    user_clone: Path  # a user's clone of it, which no run may change


@pytest.fixture
def remote(tmp_path) -> Iterator[Remote]:
    served = tmp_path / "served"
    bare = bare_remote(served)
    daemon = GitDaemon(served)
    clone = tmp_path / "user-clone"
    git_out(tmp_path, "clone", "-q", daemon.url("remote.git"), str(clone))
    yield Remote(daemon.url("remote.git"), bare, clone)
    daemon.stop()


@dataclass
class Host:
    name: str
    env: dict
    state: Path
    proc: subprocess.Popen


@pytest.fixture
def hosts(procs, cli_env, tmp_path):
    """start(n): n workers as n hosts, each with its own name and state dir."""
    started: list[Host] = []

    def start(n: int) -> list[Host]:
        for i in range(1, n + 1):
            name = f"host-{i}"
            env = dict(cli_env, MAGSAG_STATE_DIR=str(tmp_path / name))
            proc = procs.start_with(env, "worker", "--host", name, name=name)
            started.append(Host(name, env, tmp_path / name, proc))
        return started

    return start
