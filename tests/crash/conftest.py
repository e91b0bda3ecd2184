import pytest

from tests.support.processes import Processes


@pytest.fixture
def procs(cli_env, tmp_path):
    processes = Processes(cli_env, tmp_path)
    yield processes
    processes.stop_all()
