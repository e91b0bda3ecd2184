"""Calling the `magsag` command as a user does: a real subprocess with its own env."""

import json
import subprocess
import sys
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
