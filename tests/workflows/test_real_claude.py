"""With the real Claude Code CLI installed (npm @anthropic-ai/claude-code) and no
credentials, a task fails at once, clearly, and is not retried. Skipped without it."""

import shutil
import time

import pytest

from magsag.contracts.run import TaskStatus
from tests.support.runs import bash_plan, run_plan

REAL_CLAUDE = shutil.which("claude")
pytestmark = pytest.mark.skipif(
    REAL_CLAUDE is None or "standins" in REAL_CLAUDE, reason="the real claude CLI is not installed"
)


async def test_the_real_claude_without_credentials_fails_fast_and_clearly(
    client, worker, repo, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no login anywhere
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN", raising=False)
    plan = bash_plan(
        [{"name": "real", "prompt": "say hi", "runner": "claude", "retries": 2}],
        runners={"claude": {"kind": "claude", "command": [REAL_CLAUDE]}},
    )
    started = time.monotonic()
    _, result = await run_plan(client, plan, repo, tmp_path, worker)
    task = result.tasks["real"]
    assert task.status == TaskStatus.FAILED
    assert task.attempts == 1  # authentication is not retried
    assert task.error.startswith("AgentAuthError") and "Not logged in" in task.error
    assert time.monotonic() - started < 30
