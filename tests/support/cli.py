"""Calling the `magsag` command as a user does: a real subprocess with its own env."""

import json
import subprocess
import sys
import time
from pathlib import Path

MAGSAG = str(Path(sys.executable).parent / "magsag")


def magsag(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MAGSAG, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )


def magsag_json(*args: str, env: dict) -> dict:
    done = magsag(*args, "--json", env=env)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def wait_for(predicate, timeout: float = 60, interval: float = 0.5, what: str = "condition"):
    """Poll until predicate() returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
