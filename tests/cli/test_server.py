"""The embedded default: `magsag server`, and `magsag run` starting one when none is up."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from magsag.cli.runtime import ensure_search_attributes
from magsag.contracts.constants import SEARCH_ATTRIBUTES
from magsag.worker.devserver import temporal_binary
from tests.support.cli import MAGSAG, magsag
from tests.support.net import answers, free_port
from tests.support.poll import wait_for


def _namespace(address: str) -> dict:
    done = subprocess.run(
        [temporal_binary(), "operator", "namespace", "describe", "--address", address,
         "-o", "json", "default"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def _search_attributes(address: str) -> str:
    return subprocess.run(
        [temporal_binary(), "operator", "search-attribute", "list", "--address", address],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_server_runs_in_the_foreground_with_sqlite_retention_and_attributes(tmp_path, cli_env):
    port, ui_port = free_port(), free_port()
    db = tmp_path / "db" / "temporal.db"
    env = {k: v for k, v in cli_env.items() if k != "TEMPORAL_ADDRESS"}
    server = subprocess.Popen(
        [MAGSAG, "server", "--port", str(port), "--ui-port", str(ui_port), "--db", str(db)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: answers(ui_port) and answers(port), timeout=60, what="server ports")
        address = f"localhost:{port}"
        retention = wait_for(
            lambda: _namespace(address)["config"]["workflowExecutionRetentionTtl"] == "2592000s",
            timeout=30,
            what="retention raised to 30 days",
        )
        assert retention
        assert all(name in _search_attributes(address) for name in ("MagsagRepo", "MagsagPlan"))
        assert db.exists()  # persisted in SQLite, where --db said
        # in its write-ahead log mode, each commit synced (worker/devserver.py)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert (db.parent / (db.name + "-wal")).exists()
    finally:
        server.send_signal(signal.SIGTERM)
        stderr = server.communicate(timeout=30)[1]
    assert f"Web UI: http://localhost:{ui_port}" in stderr
    # Stopping `magsag server` stopped the Temporal server it runs.
    wait_for(lambda: not answers(port), timeout=30, what="the server to stop")


@pytest.mark.skipif(answers(7233), reason="a server already listens on the default port")
def test_run_starts_the_embedded_server_when_none_is_configured(tmp_path, repo, cli_env):
    plan = tmp_path / "plan.yaml"
    plan.write_text("runners: {sh: {command: [bash, -c, '{prompt}']}}\n"
                    "tasks: [{name: hello, prompt: 'echo hi > hi.txt'}]\n")  # fmt: skip
    env = {k: v for k, v in cli_env.items() if k != "TEMPORAL_ADDRESS"}
    state = Path(env["MAGSAG_STATE_DIR"])
    try:
        done = magsag("run", plan, "--repo", repo, env=env, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "starting the embedded Temporal server on localhost:7233" in done.stderr
        assert (state / "temporal.db").exists()
        # The server outlives the CLI, so the next run and the Web UI find it.
        assert answers(7233)
    finally:
        pidfile = state / "server.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
            wait_for(lambda: not answers(7233), timeout=30, what="embedded server to stop")


async def test_missing_search_attributes_are_registered_before_a_run_starts():
    # A server that has never seen magsag (or an older magsag) lacks its attributes.
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    try:
        client = env.client
        await ensure_search_attributes(client)
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        assert set(SEARCH_ATTRIBUTES) <= set(listed.custom_attributes)
        await ensure_search_attributes(client)  # and again: nothing left to add
    finally:
        await env.shutdown()
