"""What docker-compose.yml runs, run here against the test's Temporal server: the setup
script the one-shot service runs, and the worker's command and health check as the
file spells them. Only the containers around them are missing."""

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from magsag.contracts import constants as C
from magsag.contracts.durations import parse_duration
from tests.deploy.files import ROOT, environment, in_container, services
from tests.support.cli import magsag_json
from tests.support.poll import wait_for

SETUP_SCRIPT = ROOT / "deploy" / "temporal-setup.sh"
PLAN = "runners: {sh: {command: [bash, -c, '{prompt}']}}\ntasks: [{name: a, prompt: 'true'}]\n"


def _with_temporal_cli(env: dict) -> dict:
    """The `temporal` CLI the images have: here the one magsag's .venv installs."""
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}


def _setup(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=150
    )


async def test_the_setup_readies_a_namespace_for_magsag_and_can_run_again(client, cli_env):
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    env = _with_temporal_cli({**cli_env, "TEMPORAL_NAMESPACE": namespace})

    first = _setup(env)
    assert first.returncode == 0, first.stdout + first.stderr
    again = _setup(env)  # every `docker compose up` runs it
    assert again.returncode == 0, again.stdout + again.stderr

    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    assert retention.total_seconds() == parse_duration(C.NAMESPACE_RETENTION)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    custom = {
        name: IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").title()
        for name, kind in listed.custom_attributes.items()
    }
    assert custom == C.SEARCH_ATTRIBUTES


async def test_the_worker_service_runs_a_worker_with_a_state_dir_of_its_own(
    tmp_path, repo, cli_env, client
):
    worker = services()["worker"]
    command = [in_container(part) for part in worker["command"]]
    health = in_container(worker["healthcheck"]["test"][1])
    host = socket.gethostname()  # a container's HOSTNAME is its host name
    volume = tmp_path / "volume"  # stands for the worker-state volume
    assert environment(worker)["MAGSAG_STATE_DIR"] == "/var/lib/magsag"
    env = _with_temporal_cli(
        {**cli_env, "HOSTNAME": host, "MAGSAG_STATE_DIR": str(volume), "MAGSAG_WORKER_ARGS": ""}
    )

    def healthy() -> bool:
        return subprocess.run(["sh", "-c", health], env=env, timeout=30).returncode == 0

    assert not healthy()  # no worker polls yet
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(healthy, timeout=60, what="the worker's health check to pass")
        # The shell exec'd magsag, which has the state directory of this host.
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"MAGSAG_STATE_DIR={volume}/{host}".encode() in environ
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN)
        started = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)
        handle = client.get_workflow_handle(C.plan_workflow_id(started["run_id"]))
        assert (await handle.result())["status"] == "succeeded"  # this worker ran it
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
