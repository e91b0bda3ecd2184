"""Invariant 8: a worker killed at any moment costs seconds, never a task or a commit.

Kill points are spread over a whole run (every step of it is somewhere under one:
worktree creation, agents, checkpoint commits, worktree removal, integration, the run
log), half of them killing the worker alone (as an OOM kill does) and half its whole
process group, so the git commands it was running die half-way too. Each point is its
own run with its own worker, and the points run side by side to keep the sweep short.
MAGSAG_KILL_SOAK=N draws N random points over the run instead (the soak in issue notes).
"""

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from magsag.cli import remote_inputs
from magsag.contracts import constants as C
from magsag.contracts import remotes
from magsag.contracts.run import RunResult, RunStatus
from tests.support.cli import isolated_env
from tests.support.gitrepo import checkpoints_on, git_out, make_repo
from tests.support.poll import eventually
from tests.support.processes import Processes, processes_of_run
from tests.support.runs import (
    Queues,
    bash_plan,
    retried_activities,
    run_input,
    start_run,
    worktrees_left,
)

CHAIN = [
    {"name": f"c{i}", "prompt": f"sleep 0.3; echo {i} > c{i}.txt",
     **({"depends_on": [f"c{i - 1}"]} if i else {})}
    for i in range(3)
]  # fmt: skip
WIDE = [{"name": f"w{i}", "prompt": f"sleep 0.2; echo {i} > w{i}.txt"} for i in range(4)]
TASKS = sorted(t["name"] for t in CHAIN + WIDE)
POINTS = 12  # spread evenly over an undisturbed run of the plan, measured first
URL_POINTS = 6  # the same on a URL run: one batch side by side
# DESIGN: a dead worker's activities are retried elsewhere within about the heartbeat
# timeout; the run ends within RECOVERY_BOUND of the kill plus its remaining work.
RECOVERY_BOUND = 30.0
REPLACED_AFTER = 1.0  # the new worker starts this long after the kill
SIDE_BY_SIDE = 6
# The sweep starts two workers per point, six points at once, on 2 cores shared with the
# other tests, and uses no `magsag` command: each worker's warm CLI process (~0.7 s of
# CPU to import magsag) would only slow the replacing worker it measures.
WORKER = ("worker", "--no-warm-cli")

SOAK = int(os.environ.get("MAGSAG_KILL_SOAK", "0"))


@dataclass
class Point:
    delay: float  # seconds after the run's first step
    whole_group: bool


@dataclass
class Outcome:
    point: Point
    result: RunResult
    recovery: float  # seconds from the kill to the run's end
    checkpoints: list[str]
    worktrees: list[str]
    leftover_dirs: list[str]
    orphans: list[int]
    interrupted: list[str]  # activities a dead worker held, retried by Temporal


def _points(run_seconds: float, points: int) -> list[Point]:
    """Kill points over a run that takes run_seconds when nothing goes wrong."""
    if SOAK:
        delays = sorted(round(random.uniform(0, run_seconds), 2) for _ in range(SOAK))
    else:
        delays = [round(run_seconds * i / (points - 1), 2) for i in range(points)]
    return [Point(delay, whole_group=i % 2 == 1) for i, delay in enumerate(delays)]


def _kill(proc, whole_group: bool) -> None:
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


async def _kill_during_a_run(
    client: Client, point: Point | None, home: Path, on_url: bool = False
) -> Outcome:
    """Run the plan and kill its worker at the point (None: no kill; `recovery` is then
    the run's time from its first step to its end). on_url: the run is on a file:// URL
    and the replacing worker is another host (its own state dir): the first host is lost
    for good."""
    env = isolated_env(home, "sweep")
    env["TEMPORAL_ADDRESS"] = client.service_client.config.target_host
    queues = Queues.of_user(env)
    repo = make_repo(home / "repo")
    procs = Processes(env, home)
    inp = run_input(bash_plan(CHAIN + WIDE, concurrency=4), repo, home, queues)
    hosts = [env, env]
    if on_url:
        repo = home / "remote.git"  # the run's base is this repository's main
        git_out(home, "clone", "-q", "--bare", str(home / "repo"), str(repo))
        hosts = [dict(env, MAGSAG_STATE_DIR=str(home / f"host-{i}")) for i in (1, 2)]
        inp = inp.model_copy(update={
            "paths": remote_inputs.paths(f"file://{repo}", inp.run_id),
            "host_queue": C.any_host_queue(queues.task_queue),
        })  # fmt: skip
    state = Path(hosts[0]["MAGSAG_STATE_DIR"])
    try:
        first = procs.start_with(hosts[0], *WORKER, name="worker-1")
        handle = await start_run(client, inp)
        run_log = Path(remotes.resolve(inp.paths.log_dir, state)) / "run.jsonl"
        await eventually(run_log.exists, timeout=60, interval=0.02, what="the run's first step")
        killed_at = time.monotonic()
        if point is not None:
            await asyncio.sleep(point.delay)  # the kill point itself; what follows polls
            _kill(first, point.whole_group)
            killed_at = time.monotonic()
            await asyncio.sleep(REPLACED_AFTER)
            procs.start_with(hosts[1], *WORKER, name="worker-2")
        result = await asyncio.wait_for(handle.result(), timeout=120)
        recovery = time.monotonic() - killed_at
        if on_url:  # the lost host's agents have no one to kill them: they end
            await eventually(lambda: not processes_of_run(inp.run_id), timeout=10)
        last = Path(hosts[1]["MAGSAG_STATE_DIR"]) / "worktrees" if on_url else home / "worktrees"
        return Outcome(
            point=point,
            result=result,
            recovery=recovery,
            checkpoints=sorted(checkpoints_on(repo, C.integration_branch(inp.run_id))),
            worktrees=worktrees_left(repo) if not on_url else [],
            leftover_dirs=[str(p) for p in last.glob("*/*")],
            orphans=processes_of_run(inp.run_id),
            interrupted=await retried_activities(client, inp.run_id, list(result.tasks)),
        )
    finally:
        procs.stop_all()


async def test_a_worker_killed_at_any_moment_costs_seconds_never_a_task(client, tmp_path):
    await _sweep(client, tmp_path, POINTS, on_url=False)


async def test_a_host_lost_at_any_moment_of_a_url_run_costs_seconds_never_a_task(client, tmp_path):
    # Every step of a URL run pushes or fetches: the lost host's clone and worktrees go
    # with it, and what it pushed must be reused, never duplicated.
    await _sweep(client, tmp_path, URL_POINTS, on_url=True)


async def _sweep(client: Client, tmp_path: Path, points: int, on_url: bool) -> None:
    undisturbed = await _kill_during_a_run(client, None, tmp_path / "undisturbed", on_url)
    assert undisturbed.result.status == RunStatus.SUCCEEDED
    run_seconds = undisturbed.recovery
    print(f"undisturbed run: {run_seconds:.1f}s from its first step")
    gate = asyncio.Semaphore(SIDE_BY_SIDE)

    async def one(index: int, point: Point) -> Outcome:
        async with gate:
            return await _kill_during_a_run(client, point, tmp_path / f"point-{index}", on_url)

    spread = _points(run_seconds, points)
    outcomes = await asyncio.gather(*(one(i, p) for i, p in enumerate(spread)))
    for o in sorted(outcomes, key=lambda o: o.point.delay):  # read by soak runs (pytest -s)
        kind = "group" if o.point.whole_group else "worker"
        print(f"kill {kind:6} at {o.point.delay:4.2f}s: {o.result.status.value}, "
              f"recovered in {o.recovery:4.1f}s, retried: {', '.join(o.interrupted)}")  # fmt: skip
    print(f"slowest recovery: {max(o.recovery for o in outcomes):.1f}s; interrupted over the "
          f"sweep: {sorted({a for o in outcomes for a in o.interrupted})}")  # fmt: skip
    for o in outcomes:
        where = f"kill at {o.point.delay}s (whole group: {o.point.whole_group})"
        failed = {n: (t.status.value, t.error) for n, t in o.result.tasks.items()
                  if t.status.value != "succeeded"}  # fmt: skip
        assert o.result.status == RunStatus.SUCCEEDED, f"{where}: {failed}"
        assert all(t.attempts == 1 for t in o.result.tasks.values()), where
        assert o.checkpoints == TASKS, f"{where}: each checkpoint exactly once"
        assert o.worktrees == [] and o.leftover_dirs == [], where
        assert o.orphans == [], f"{where}: agent processes left"
        assert o.recovery < RECOVERY_BOUND + run_seconds, f"{where}: {o.recovery:.1f}s"
