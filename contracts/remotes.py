"""Runs on a remote: what a `--repo` that is a git URL means for a run's paths.

A run on a local path is host-bound: its paths are that host's. A run on a URL is not
(DESIGN invariant 6): any worker may take its steps, each in its own cached clone of
the remote under its own state dir. So the run's paths are written relative to "the
state dir of the worker that reads them" (WORKER_STATE), and each worker resolves them.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

# Leads a path of a URL run: the state dir of whichever host reads the path.
WORKER_STATE = "@state"
_SCHEMES = ("file", "ssh", "git", "http", "https", "git+ssh", "ssh+git")
# git's scp-like syntax: [user@]host:path, a colon before any slash.
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^@/:]+:(?!//)")


def is_url(repo: str) -> bool:
    """Whether `repo` names a remote (file://, ssh://, https://, git://, user@host:path)
    rather than a path on this host."""
    if "://" in repo:
        return urlsplit(repo).scheme in _SCHEMES
    return bool(_SCP_LIKE.match(repo)) and not Path(repo).exists()


def password_in(url: str) -> bool:
    """Whether the URL carries a password or token (https://user:TOKEN@host/...): it
    would be kept in the run's history for anyone who can read it."""
    if "://" not in url:
        return False
    return urlsplit(url).password is not None


def shown(url: str) -> str:
    """The URL without any password, for messages."""
    if not password_in(url):
        return url
    parts = urlsplit(url)
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def worker_path(*parts: str) -> str:
    """A path under the state dir of the worker that will read it."""
    return "/".join((WORKER_STATE, *parts))


def resolve(path: str, state_dir: Path) -> str:
    """A run's path on this host: WORKER_STATE replaced by this host's state dir."""
    if path == WORKER_STATE or path.startswith(WORKER_STATE + "/"):
        return str(state_dir) + path[len(WORKER_STATE) :]
    return path
