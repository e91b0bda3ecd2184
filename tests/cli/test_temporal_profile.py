"""A team points magsag at its server with a Temporal config profile, as every Temporal
tool: the profile file alone, no TEMPORAL_ADDRESS, selects the server and the namespace."""

import uuid

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from magsag.contracts import constants as C
from magsag.contracts.wire import data_converter
from tests.support.cli import magsag, magsag_json
from tests.support.poll import eventually

PLAN = "runners: {sh: {command: [bash, -c, '{prompt}']}}\ntasks: [{name: a, prompt: 'true'}]\n"

# The default profile points nowhere: only the named profile can reach the test server.
PROFILES = """
[profile.default]
address = "127.0.0.1:1"

[profile.team]
address = "{address}"
namespace = "{namespace}"
"""


async def _namespace_ready(client: Client, namespace: str) -> bool:
    """A new namespace answers once the frontend's namespace cache has it."""
    try:
        await Client(client.service_client, namespace=namespace).count_workflows()
    except RPCError:
        return False
    return True


async def test_a_profile_file_alone_selects_the_server_and_the_namespace(
    tmp_path, repo, cli_env, client
):
    namespace = f"team-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    await eventually(lambda: _namespace_ready(client, namespace), what=f"namespace {namespace}")
    profiles = tmp_path / "temporal.toml"
    address = client.service_client.config.target_host
    profiles.write_text(PROFILES.format(address=address, namespace=namespace))
    env = {k: v for k, v in cli_env.items() if k != "TEMPORAL_ADDRESS"}
    env.update(TEMPORAL_CONFIG_FILE=str(profiles), TEMPORAL_PROFILE="team")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)

    assert magsag_json("runs", "list", env=env) == []  # reached, and the namespace is empty
    # `run` registers magsag's search attributes in the fresh namespace, as on a
    # self-hosted server, and runs the plan there.
    result = magsag_json("run", plan, "--repo", repo, env=env)
    assert result["status"] == "succeeded"
    assert magsag_json("status", result["run_id"], env=env)["status"] == "succeeded"
    listed = magsag_json("runs", "list", env=env)
    assert [row["run_id"] for row in listed] == [result["run_id"]]

    # The run lives in the profile's namespace, not in the server's default one.
    workflow_id = C.plan_workflow_id(result["run_id"])
    team = Client(client.service_client, namespace=namespace, data_converter=data_converter)
    assert (await team.get_workflow_handle(workflow_id).describe()).status.name == "COMPLETED"
    assert (await client.count_workflows(f'WorkflowId = "{workflow_id}"')).count == 0

    # Without TEMPORAL_PROFILE the file's default profile applies, which reaches nothing.
    del env["TEMPORAL_PROFILE"]
    done = magsag("status", result["run_id"], env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach Temporal at 127.0.0.1:1")


def test_an_unknown_profile_is_one_line_for_every_command(tmp_path, cli_env):
    profiles = tmp_path / "temporal.toml"
    profiles.write_text(PROFILES.format(address="127.0.0.1:1", namespace="x"))
    env = {**cli_env, "TEMPORAL_CONFIG_FILE": str(profiles), "TEMPORAL_PROFILE": "nope"}
    for command in (["runs", "list"], ["status", "some-run"], ["worker"]):
        done = magsag(*command, env=env)
        assert done.returncode == 2, command
        assert done.stderr == "error: Temporal configuration: Profile 'nope' not found\n"
