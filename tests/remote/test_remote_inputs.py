"""A run on a URL that cannot be: one line, exit 2, nothing created (invariant 7); and a
push the remote refuses mid-run fails that task with git's message."""

import json

import pytest

from tests.support.cli import magsag
from tests.support.gitdaemon import GitDaemon, bare_remote, free_port, refs
from tests.support.runs import bash_plan_file

SECRET = "s3cr3t-t0ken"
# Each case: (the --repo URL and extra arguments, from the served folder; expected text).
BAD_URLS = {
    "unreachable": (lambda d, s: [f"git://127.0.0.1:{free_port()}/remote.git"], "cannot read it"),
    "no-such-base": (lambda d, s: [d.url("remote.git"), "--base", "nope"], "--base nope: no such"),
    "read-only": (lambda d, s: [s.url("remote.git")], "cannot store the plan"),
    "password": (
        lambda d, s: [f"https://me:{SECRET}@127.0.0.1:1/remote.git"],
        "the URL carries a password",
    ),
    "worktree-root": (
        lambda d, s: [d.url("remote.git"), "--worktree-root", "/tmp/x"],
        "each worker's own state dir",
    ),
}


@pytest.fixture
def daemons(tmp_path):
    served = tmp_path / "served"
    bare = bare_remote(served)
    writable, read_only = GitDaemon(served), GitDaemon(served, writable=False)
    yield writable, read_only, bare
    writable.stop()
    read_only.stop()


@pytest.mark.parametrize("case", sorted(BAD_URLS))
async def test_a_bad_url_exits_2_and_creates_nothing(case, daemons, tmp_path, client, cli_env):
    writable, read_only, bare = daemons
    url, *args = BAD_URLS[case][0](writable, read_only)
    before = refs(bare)
    plan = bash_plan_file(tmp_path, [{"name": "t", "prompt": "true"}])
    done = magsag("run", plan, "--repo", url, *args, env=cli_env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("error: ") and BAD_URLS[case][1] in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert SECRET not in done.stderr + done.stdout
    assert refs(bare) == before
    count = await client.count_workflows(f"TaskQueue = '{cli_env['MAGSAG_TASK_QUEUE']}'")
    assert count.count == 0


def test_a_push_the_remote_refuses_fails_that_task_with_gits_message(tmp_path, cli_env):
    bare = bare_remote(tmp_path / "served")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\nwhile read old new ref; do case $ref in */tasks/locked)\n"
        "echo 'locked: this branch is frozen' >&2; exit 1;; esac; done\n"
    )
    hook.chmod(0o755)
    tasks = [{"name": "ok", "prompt": "echo ok > ok.txt"},
             {"name": "locked", "prompt": "echo x > x.txt", "critical": False}]  # fmt: skip
    plan = bash_plan_file(tmp_path, tasks)
    done = magsag("run", plan, "--repo", f"file://{bare}", "--json", env=cli_env)
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded", done.stderr
    assert result["tasks"]["ok"]["status"] == "succeeded"
    locked = result["tasks"]["locked"]
    assert locked["status"] == "failed" and locked["attempts"] == 1
    assert "locked: this branch is frozen" in locked["error"]
    integration = refs(bare)[f"refs/heads/magsag/{result['run_id']}/integration"]
    assert integration == result["integration_commit"]
