"""`--json` output is JSON alone: the SDK's own log lines never reach stdout."""

import json

from tests.support.cli import magsag
from tests.support.runs import bash_plan_file


def test_run_json_stays_parseable_when_the_sdk_warns(cli_env, repo, tmp_path):
    # Long task names make the run's memo pass the SDK's 2 KB warning size, and the
    # SDK's core warns about it: on stdout, before its logs were sent to Python logging.
    tasks = [{"name": f"t{i}-" + "x" * 220, "prompt": "true"} for i in range(10)]
    plan = bash_plan_file(tmp_path, tasks, concurrency=10)
    done = magsag("run", plan, "--repo", repo, "--json", env=cli_env, timeout=180)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
