"""The floor under magsag's design: what Temporal's own steps cost in a bench scenario.

A bare Temporal program with magsag's shape: a parent workflow starts a child workflow per
task, C at a time, and each child runs one activity that runs the task's command (the
bench plan's `sleep S; echo done > out-<task>.txt`, in a scratch folder). Its worker is in
this process, on the same server bench/run.py uses; there is no CLI, no git, no memo, no
search attribute and no integration. Runs interleave with bench/baseline.sh. magsag with
a standing worker cannot come nearer the baseline than this without fewer workflow round
trips per task. See bench/README.md, "The floor".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from run import (
    ADDRESS,
    MAGSAG,
    BenchError,
    magsag_env,
    reachable,
    run_baseline,
    server_ready,
    start,
    stop,
    wait_for,
)
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def run_command(args: tuple[str, float, str]) -> int:
    task, sleep, folder = args
    script = f"sleep {sleep:g}; echo done > out-{task}.txt"
    proc = await asyncio.create_subprocess_exec("bash", "-c", script, cwd=folder)
    return await proc.wait()


@workflow.defn
class FloorTask:
    @workflow.run
    async def run(self, args: tuple[str, float, str]) -> int:
        timeout = timedelta(minutes=10)
        return await workflow.execute_activity(run_command, args, start_to_close_timeout=timeout)


@workflow.defn
class FloorPlan:
    @workflow.run
    async def run(self, n: int, sleep: float, concurrency: int, folder: str) -> int:
        slots = asyncio.Semaphore(concurrency)
        run_id = workflow.info().workflow_id

        async def task(i: int) -> int:
            async with slots:
                args = (f"t{i}", sleep, folder)
                return await workflow.execute_child_workflow(
                    FloorTask.run, args, id=f"{run_id}/t{i}"
                )

        codes = await asyncio.gather(*(task(i) for i in range(1, n + 1)))
        return sum(codes)


async def floor_runs(scenario: tuple[int, float, int], repeat: int, root: Path) -> list[dict]:
    """Baseline and bare Temporal runs, interleaved; each run's wall seconds."""
    n, sleep, concurrency = scenario
    client = await Client.connect(ADDRESS)
    queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
    runs = []
    async with Worker(
        client,
        task_queue=queue,
        workflows=[FloorPlan, FloorTask],
        activities=[run_command],
        workflow_runner=UnsandboxedWorkflowRunner(),  # as magsag's workers
        max_concurrent_activities=64,
    ):
        for i in range(repeat + 1):  # the first is a warm-up
            baseline = run_baseline(root, scenario)["wall"]
            folder = tempfile.mkdtemp(dir=root)
            began = time.perf_counter()
            code = await client.execute_workflow(
                FloorPlan.run,
                args=[n, sleep, concurrency, folder],
                id=f"bench-floor-{uuid.uuid4().hex}",
                task_queue=queue,
            )
            wall = time.perf_counter() - began
            if code != 0 or len(list(Path(folder).glob("out-*.txt"))) != n:
                raise BenchError(f"a floor run failed (exit codes summing to {code})")
            if i:
                runs.append({"baseline": baseline, "floor": wall})
                print(f"baseline {baseline:.2f}s  floor {wall:.2f}s", file=sys.stderr)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; medians count")
    args = parser.parse_args()
    scenario = (args.tasks, args.sleep, args.concurrency)
    server = None
    with tempfile.TemporaryDirectory(prefix="magsag-floor-") as tmp:
        try:
            if not reachable():
                print(f"no Temporal server on {ADDRESS}: starting one", file=sys.stderr)
                env = magsag_env(Path(tmp) / "state", "bench-floor")  # its own state dir
                server = start([MAGSAG, "server"], env, Path(tmp) / "server.log")
                wait_for(server_ready, "magsag server", server)
            runs = asyncio.run(floor_runs(scenario, args.repeat, Path(tmp)))
        except BenchError as err:
            sys.exit(f"bench: {err}")
        finally:
            if server is not None:
                stop(server)
    base, floor = (statistics.median(r[k] for r in runs) for k in ("baseline", "floor"))
    n, sleep, concurrency = scenario
    print(
        f"N={n} S={sleep:g} C={concurrency}: baseline {base:.2f}s, bare Temporal "
        f"{floor:.2f}s ({floor / base:.2f}x), medians of {len(runs)}"
    )


if __name__ == "__main__":
    main()
