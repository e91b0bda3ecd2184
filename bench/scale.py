"""Benchmark at scale: how a run's cost grows with its number of tasks.

N independent no-op tasks (each writes one file) at concurrency C with a standing worker,
for each N given: wall time, tasks per second, the plan workflow's history (events and
bytes per task, summed over the executions of a run that continued as new), `magsag
status --json` latency at the end, and the worker's peak RSS; then how long `magsag plan
validate` takes on a 20 MB plan (10,000 tasks with 2 KB prompts). Run with
`make bench-scale` (N = 1,000) or `make bench-scale TASKS="1000 10000"`; see
bench/README.md ("Scale").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from run import (  # bench/run.py: the same server, worker and repository helpers
    ADDRESS,
    MAGSAG,
    TEMPORAL,
    BenchError,
    check_branch,
    git,
    magsag_env,
    make_repo,
    output_file,
    polling,
    reachable,
    server_ready,
    start,
    stop,
    timed,
    wait_for,
    write_plan,
)

from magsag.contracts import constants as C

DEFAULT_TASKS = [1000]
BIG_PLAN_TASKS = 10_000
BIG_PLAN_PROMPT = 2_000  # bytes per prompt: 10,000 x 2 KB = 20 MB


def history_size(run_id: str) -> tuple[int, int, int]:
    """Events and JSON bytes of the run's plan workflow history, over all its
    executions, and how many executions there were."""
    events = size = executions = 0
    run = []  # the current execution first, then each one it continued
    while True:
        shown = subprocess.run(
            [TEMPORAL, "workflow", "show", "--address", ADDRESS,
             "--workflow-id", C.plan_workflow_id(run_id), *run, "--output", "json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        history = json.loads(shown.stdout)["events"]
        events, size, executions = events + len(history), size + len(shown.stdout), executions + 1
        started = history[0].get("workflowExecutionStartedEventAttributes", {})
        previous = started.get("continuedExecutionRunId")
        if not previous:
            return events, size, executions
        run = ["--run-id", previous]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU a live process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pace(state: Path, run_id: str) -> tuple[float, float]:
    """Tasks per second over the first and the last fifth of the run's checkpoints
    (run.jsonl): a cost per task that grows with the run shows as a slower end."""
    lines = (state / "runs" / run_id / "run.jsonl").read_text().splitlines()
    times = [
        datetime.fromisoformat(e["at"]).timestamp()
        for e in map(json.loads, lines)
        if e["event"] == "checkpoint"
    ]
    fifth = max(len(times) // 5, 2)
    head, tail = times[:fifth], times[-fifth:]
    return (fifth - 1) / (head[-1] - head[0]), (fifth - 1) / (tail[-1] - tail[0])


@dataclass(frozen=True)
class Tree:
    """The repository's tree, beside the file each task writes (see output_file)."""

    flat: bool = False  # every task's file in the top folder
    extra: int = 0  # files of the project's own, in 100 folders
    todo: int = 0  # tasks' files there from the start (a migration rewrites them)


def populate(repo: Path, tree: Tree) -> None:
    """Commit the tree's files: a real project's, which every task's checkout, clean and
    `add -A` walks, and (a migration) the ones tasks t1..t<todo> will rewrite."""
    files = {f"src/{i % 100:02d}/m{i}.py": f"X = {i}\n" for i in range(tree.extra)}
    files |= {output_file(f"t{i}", not tree.flat): "todo\n" for i in range(1, tree.todo + 1)}
    if not files:
        return
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "tree")


def check_rewritten(repo: Path, branch: str, n: int, tree: Tree) -> None:
    """A migration's every task rewrote its file: none of t1..tn still reads "todo"."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "grep", "--name-only", "todo", branch, "--"],
        capture_output=True, text=True,
    )  # fmt: skip
    left = {line.split(":", 1)[1] for line in listed.stdout.splitlines()}
    mine = [output_file(f"t{i}", not tree.flat) for i in range(1, min(n, tree.todo) + 1)]
    if any(path in left for path in mine):
        raise BenchError(f"{branch} in {repo} has task files still to do")


def one_run(root: Path, n: int, concurrency: int, env: dict, worker: int, tree: Tree) -> dict:
    plan = write_plan(root, n, 0, concurrency, sharded=not tree.flat)
    repo = make_repo(root)
    populate(repo, tree)
    argv = [MAGSAG, "run", str(plan), "--repo", str(repo), "--json"]
    cli_before, worker_before = children_cpu_seconds(), cpu_seconds(worker)
    # In its own process, so that its CPU (reading the run as it goes) counts here: a warm
    # command's process is the warm process's child (cli/warm.py), not this one's.
    wall, done = timed(argv, 120 + 2 * n, env | {"MAGSAG_NO_WARM": "1"})
    cli_cpu, worker_cpu = children_cpu_seconds() - cli_before, cpu_seconds(worker) - worker_before
    if done.returncode != 0 or not done.stdout.strip():
        why = done.stderr.strip()[-800:]
        raise BenchError(f"magsag run of {n} tasks failed ({done.returncode}): {why}")
    try:
        result = json.loads(done.stdout)
    except ValueError:
        raise BenchError(f"not JSON: {done.stdout[:300]!r} / {done.stderr[-300:]!r}") from None
    check_branch(repo, result["integration_branch"], n, sharded=not tree.flat)
    check_rewritten(repo, result["integration_branch"], n, tree)
    first, last = pace(Path(env["MAGSAG_STATE_DIR"]), result["run_id"])
    status_s, shown = timed([MAGSAG, "status", result["run_id"], "--json"], 60, env)
    if shown.returncode != 0:
        raise BenchError(f"status failed: {shown.stderr.strip()}")
    events, size, executions = history_size(result["run_id"])
    return {"tasks": n, "wall_s": wall, "tasks_per_s": n / wall, "status_s": status_s,
            "events_per_task": events / n, "kb_per_task": size / n / 1024,
            "executions": executions, "first_fifth_per_s": first, "last_fifth_per_s": last,
            "cli_cpu_s": cli_cpu, "worker_cpu_ms_per_task": 1000 * worker_cpu / n,
            "extra_files": tree.extra, "todo_files": tree.todo}  # fmt: skip


def big_plan_validation(root: Path, env: dict) -> dict:
    prompt = "Rewrite this module.\n" + "x" * (BIG_PLAN_PROMPT - 21)
    tasks = [{"name": f"t{i}", "prompt": prompt} for i in range(BIG_PLAN_TASKS)]
    plan = root / "big.yaml"
    plan.write_text(json.dumps({"runners": {"sh": {"command": ["true"]}}, "tasks": tasks}))
    wall, done = timed([MAGSAG, "plan", "validate", str(plan)], 120, env)
    if done.returncode != 0:
        raise BenchError(f"validate of the big plan failed: {done.stderr.strip()}")
    return {"bytes": plan.stat().st_size, "validate_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=DEFAULT_TASKS)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--flat", action="store_true", help="every file in the top folder (see output_file)"
    )
    parser.add_argument(
        "--repo-files", type=int, default=0, metavar="K",
        help="start from a repository of K more files (a real project's tree), so that "
        "git's cost per task is that of K files from the first task on",
    )  # fmt: skip
    parser.add_argument(
        "--migration", action="store_true",
        help="each task rewrites a file the repository has from the start (one per task "
        "of the biggest run), as a migration does: the tree keeps its size through the "
        "run, and runs of every size work on the same tree",
    )  # fmt: skip
    args = parser.parse_args()
    todo = max(args.tasks) if args.migration else 0
    tree = Tree(flat=args.flat, extra=args.repo_files, todo=todo)
    with tempfile.TemporaryDirectory(prefix="magsag-bench-scale-") as tmp:
        rows, rss, big = measure(Path(tmp), args.tasks, args.concurrency, tree)
    print("tasks  wall s  tasks/s  first/last fifth  executions  events/task  KB/task  "
          "status s  worker ms/task  CLI cpu s")  # fmt: skip
    for r in rows:
        history = f"{r['events_per_task']:11.1f}  {r['kb_per_task']:7.1f}"
        fifths = f"{r['first_fifth_per_s']:7.2f} / {r['last_fifth_per_s']:<7.2f}"
        print(f"{r['tasks']:5d}  {r['wall_s']:6.1f}  {r['tasks_per_s']:7.2f}  {fifths}  "
              f"{r['executions']:10d}  {history}  {r['status_s']:8.2f}  "
              f"{r['worker_cpu_ms_per_task']:14.0f}  {r['cli_cpu_s']:9.1f}")  # fmt: skip
    print(f"worker peak RSS over the runs: {rss:.0f} MB")
    print(f"plan validate of a {big['bytes'] / 1e6:.1f} MB plan: {big['validate_s']:.2f} s")
    out = Path(__file__).parent / "results" / "scale-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "worker_peak_rss_mb": rss, "big_plan": big}))


def measure(root: Path, task_counts: list[int], concurrency: int, tree: Tree):
    """The runs, a standing worker's peak RSS over them, and the big plan's validation."""
    env = magsag_env(root / "state", f"scale-{int(time.time())}")
    procs = []
    try:
        if not reachable():
            print(f"no Temporal server on {ADDRESS}: starting one", file=sys.stderr)
            procs.append(start([MAGSAG, "server"], env, root / "server.log"))
            wait_for(server_ready, "magsag server", procs[-1])
        worker = start([MAGSAG, "worker"], env, root / "worker.log")
        procs.append(worker)
        wait_for(lambda: polling(env), "magsag worker", worker)
        rows = []
        for n in task_counts:
            print(f"{n} tasks at concurrency {concurrency}...", file=sys.stderr)
            rows.append(one_run(root, n, concurrency, env, worker.pid, tree))
        return rows, peak_rss_mb(worker.pid), big_plan_validation(root, env)
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    main()
