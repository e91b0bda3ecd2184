import os
import uuid

import pytest


@pytest.fixture
def cli_env(temporal_env, tmp_path) -> dict:
    """Environment of a user whose magsag points at the test server, isolated per test."""
    suffix = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "MAGSAG_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        MAGSAG_STATE_DIR=str(tmp_path / "state"),
        MAGSAG_TASK_QUEUE=f"cli-{suffix}",
        MAGSAG_HOST=f"cli-host-{suffix}",
        COLUMNS="200",
    )
    return env
