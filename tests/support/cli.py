"""Calling the `magsag` command as a user does: a real subprocess with its own env."""

import json
import os
import subprocess
import sys
import uuid
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


def isolated_env(tmp_path: Path, prefix: str) -> dict:
    """A user's environment with its own state dir and queues (no Temporal settings)."""
    suffix = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MAGSAG_"))}
    env.update(
        MAGSAG_STATE_DIR=str(tmp_path / "state"),
        MAGSAG_TASK_QUEUE=f"{prefix}-{suffix}",
        MAGSAG_HOST=f"{prefix}-host-{suffix}",
        COLUMNS="200",
    )
    return env
