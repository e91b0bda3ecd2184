"""A run on a git:// URL, its tasks spread over three worker hosts (DESIGN invariant 6):
every checkpoint is pushed to the remote and merged there exactly once, and losing a
host for good (its worker SIGKILLed, its state dir deleted) loses nothing."""

import json
import os
import shutil
import signal

from magsag.contracts import constants as C
from tests.support.cli import magsag
from tests.support.gitdaemon import refs
from tests.support.gitrepo import git_out, user_side
from tests.support.poll import eventually
from tests.support.processes import processes_of_run
from tests.support.runs import bash_plan_file

# Twelve tasks: eight side by side (long enough for every host to take some), three
# that each merge two of them, and one after those.
SPREAD = [
    *({"name": f"w{i}", "prompt": f"sleep 0.5; echo {i} > w{i}.txt"} for i in range(8)),
    *({"name": f"pair{i}", "prompt": f"cat w{2 * i}.txt w{2 * i + 1}.txt > pair{i}.txt",
       "depends_on": [f"w{2 * i}", f"w{2 * i + 1}"]} for i in range(3)),
    {"name": "all", "prompt": "cat pair*.txt > all.txt", "depends_on": ["pair0", "pair1", "pair2"]},
]  # fmt: skip


def _start(tmp_path, remote, env, tasks, **plan) -> str:
    plan_file = bash_plan_file(tmp_path, tasks, concurrency=8, **plan)
    started = magsag("run", plan_file, "--repo", remote.url, "--detach", "--json", env=env)
    assert started.returncode == 0, started.stderr
    return json.loads(started.stdout)["run_id"]


async def _ended(run_id: str, env: dict, timeout: float = 120) -> dict:
    def status():
        shown = json.loads(magsag("status", run_id, "--json", env=env).stdout)
        return shown if shown["status"] != "running" else None

    return await eventually(status, timeout=timeout, interval=0.5, what=f"run {run_id} to end")


def _merged_once(bare, run_id: str, status: dict) -> None:
    """The remote's integration branch holds each task's checkpoint, the one its task
    branch holds, exactly once."""
    integration = C.integration_branch(run_id)
    listed = git_out(bare, "log", "--format=%H %(trailers:key=Magsag-Task,valueonly,separator=)",
                     "--no-merges", integration)  # fmt: skip
    checkpoints = [line.split() for line in listed.splitlines() if len(line.split()) == 2]
    by_task = {task: commit for commit, task in checkpoints}
    assert len(by_task) == len(checkpoints) == len(status["tasks"]), checkpoints
    on_remote = refs(bare, f"refs/heads/magsag/{run_id}/tasks/")
    for name, task in status["tasks"].items():
        pushed = on_remote[f"refs/heads/{C.task_branch(run_id, name)}"]
        assert by_task[name] == task["commit"] == pushed, name


async def test_a_run_on_a_url_spreads_over_hosts_and_merges_every_checkpoint_once(
    remote, hosts, cli_env, tmp_path
):
    before = user_side(remote.user_clone)
    workers = hosts(3)
    run_id = _start(tmp_path, remote, cli_env, SPREAD)
    status = await _ended(run_id, cli_env)

    assert status["status"] == "succeeded", status
    ran_on = {task["host"] for task in status["tasks"].values()}
    assert ran_on <= {h.name for h in workers} and len(ran_on) >= 2, ran_on
    _merged_once(remote.bare, run_id, status)
    listed = json.loads(magsag("runs", "list", "--repo", remote.url, "--json", env=cli_env).stdout)
    assert [row["run_id"] for row in listed] == [run_id]
    described = json.loads(magsag("runs", "describe", run_id, "--json", env=cli_env).stdout)
    for name, task in described["tasks"].items():  # each attempt names the host that ran it
        worker = task["attempts"][-1]["worker"]
        assert worker.endswith(f" host={status['tasks'][name]['host']}"), worker
    assert git_out(remote.bare, "show", f"{C.integration_branch(run_id)}:all.txt").split() == [
        str(i) for i in range(6)
    ]
    # The user's clone is untouched, and no host keeps a worktree.
    assert user_side(remote.user_clone) == before
    assert git_out(remote.user_clone, "for-each-ref", "refs/heads/magsag") == ""
    used = [host for host in workers if host.name in ran_on]
    for host in used:
        for clone in (host.state / "clones").iterdir():
            assert len(git_out(clone, "worktree", "list").splitlines()) == 1, host.name
    # Once the run is over, a host's gc drops what its clone keeps of it: all on the remote.
    host = used[0]
    [pruned] = json.loads(magsag("gc", "--json", env=host.env).stdout)
    assert pruned["run_id"] == run_id and "kept" not in pruned["action"], pruned
    clone = next((host.state / "clones").iterdir())
    assert git_out(clone, "for-each-ref", f"refs/heads/magsag/{run_id}") == ""


async def _victims_host_killed(remote, hosts, cli_env, tmp_path, n_hosts: int):
    """Start a run whose task `victim` writes a file mid-agent, SIGKILL the worker of the
    host running it then; returns (run id, that host, the other hosts)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    # Its agent, orphaned, goes on writing on the lost host: what it ends with there differs
    # from the task as redone elsewhere, so that host's WIP holds work the remote lacks.
    write = f'touch {marks}/"$MAGSAG_HOST"; sleep 3; echo "$MAGSAG_HOST" > v.txt'
    script = f"echo half > half.txt; {write}"
    victim = {"name": "victim", "prompt": script}
    tasks = [victim, *({"name": f"t{i}", "prompt": f"echo {i} > t{i}.txt"} for i in range(4))]
    workers = {h.name: h for h in hosts(n_hosts)}
    run_id = _start(tmp_path, remote, cli_env, tasks)
    first = await eventually(lambda: next(marks.iterdir(), None), timeout=60, what="the victim")
    lost = workers.pop(first.name)
    lost.proc.kill()  # SIGKILL: no cleanup
    lost.proc.wait(timeout=10)
    return run_id, lost, list(workers.values())


async def test_a_host_lost_for_good_loses_nothing(remote, hosts, cli_env, tmp_path):
    run_id, lost, _ = await _victims_host_killed(remote, hosts, cli_env, tmp_path, 3)

    # And the host's disk goes too (a git the worker ran may still be writing there).
    def wiped() -> bool:
        shutil.rmtree(lost.state, ignore_errors=True)
        return not lost.state.exists()

    await eventually(wiped, timeout=30, what="the lost host's state dir to go")
    for pid in processes_of_run(run_id, host=lost.name):  # orphaned: its pidfile is gone too
        os.kill(pid, signal.SIGKILL)

    status = await _ended(run_id, cli_env, timeout=90)
    assert status["status"] == "succeeded", status
    assert status["tasks"]["victim"]["host"] != lost.name
    assert status["tasks"]["victim"]["attempts"] == 1  # a lost worker costs no retry
    _merged_once(remote.bare, run_id, status)


async def test_a_host_that_comes_back_cleans_up_without_touching_the_remote(
    remote, hosts, cli_env, tmp_path
):
    run_id, lost, _ = await _victims_host_killed(remote, hosts, cli_env, tmp_path, 2)
    status = await _ended(run_id, cli_env, timeout=90)
    assert status["status"] == "succeeded", status
    on_remote = refs(remote.bare)

    # Back up: its clone still holds the worktrees of the tasks it was running (the
    # victim's at least), and the agent it left.
    done = json.loads(magsag("gc", "--json", env=lost.env).stdout)
    cleaned = {c["task"]: c for c in done if c["task"]}
    assert cleaned["victim"]["action"] == "saved and removed", cleaned
    assert {c["action"] for c in cleaned.values()} <= {"saved and removed", "removed"}
    clone = next((lost.state / "clones").iterdir())
    assert len(git_out(clone, "worktree", "list").splitlines()) == 1
    wip = cleaned["victim"]["commit"]
    assert git_out(clone, "show", f"{wip}:half.txt") == "half"
    # Its clone keeps of the run only what the remote lacks: of the WIPs gc just saved, the
    # victim's (its orphaned agent wrote this host's name), not one of a task whose agent
    # finished here, orphaned, the same work as the task redone elsewhere.
    [pruned] = [c for c in done if not c["task"]]
    assert pruned["run_id"] == run_id and "dropped" in pruned["action"], pruned
    listed = git_out(clone, "for-each-ref", "--format=%(objectname)", f"refs/heads/magsag/{run_id}")
    kept, wips = set(listed.split()), {c["task"]: c["commit"] for c in cleaned.values()}
    assert wip in kept and kept <= set(wips.values()), (kept, wips)
    for task, commit in wips.items():
        if commit and commit not in kept:
            cherry = git_out(clone, "cherry", status["integration_commit"], commit).splitlines()
            assert cherry and all(line.startswith("-") for line in cherry), (task, cherry)
    assert git_out(clone, "for-each-ref", f"refs/remotes/origin/magsag/{run_id}") == ""
    assert processes_of_run(run_id, host=lost.name) == []
    assert refs(remote.bare) == on_remote  # its WIP stays on the host: the run is over
