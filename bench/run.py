"""Benchmark: magsag against a bare bash + git script doing the same work.

Each scenario runs N independent tasks that sleep S seconds and write one file, at
concurrency C, three ways on fresh repositories: bench/baseline.sh, `magsag run` with its
in-process worker (the default), and `magsag run` with a standing `magsag worker` (whose
warm process starts the command: cli/warm.py). Each run is timed end to end and checked
(every task's file on the integration branch, no worktree left). Prints a table and writes
bench/results/latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from magsag.contracts import constants as C

# The server the bench uses: TEMPORAL_ADDRESS, as magsag itself reads it, else the
# default, where `magsag server` is started when nothing answers.
ADDRESS = os.environ.get("TEMPORAL_ADDRESS", C.DEFAULT_ADDRESS)

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MAGSAG = str(BIN / "magsag")
TEMPORAL = str(BIN / "temporal")
DEFAULT_SCENARIOS = [(8, 2.0, 4), (16, 1.0, 8)]
INPROC_NOTE = "running one in this process"  # what `magsag run` says when it hosts the worker
MODES = ("baseline", "inprocess", "standing")
SETTLE_S = 2.0  # before each timed run: settle()
COLUMNS = (
    "scenario",
    "baseline s",
    "magsag in-proc s",
    "magsag standing s",
    "in-proc/base",
    "standing/base",
    "in-proc ovh/wave s",
    "standing ovh/wave s",
)


class BenchError(RuntimeError):
    pass


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path) -> Path:
    """A small fresh repository: a few files, one commit on main."""
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=root))
    git(repo, "init", "--quiet", "--initial-branch=main")
    for name, text in {"README.md": "# bench\n", "src/app.py": "X = 1\n", ".gitignore": ""}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "init")
    return repo


def output_file(task: str, sharded: bool) -> str:
    """Where a task writes: the top folder, or (sharded) one of 100 folders, as files are
    spread in a real repository: git rewrites a folder's whole tree object for each file
    added to it, so a flat folder of N files makes every commit and merge cost O(N)."""
    return f"out/{int(task[1:]) % 100:02d}/{task}.txt" if sharded else f"out-{task}.txt"


def write_plan(root: Path, n: int, sleep: float, concurrency: int, sharded: bool = False) -> Path:
    if sharded:  # the same path as output_file's
        folder = "out/$(printf %02d $((${MAGSAG_TASK#t} % 100)))"
        write = f"mkdir -p {folder}; echo done > {folder}/$MAGSAG_TASK.txt"
    else:
        write = "echo done > out-$MAGSAG_TASK.txt"
    command = ["bash", "-c", f"sleep {sleep:g}; {write}"]
    plan = {
        "name": "bench",
        "concurrency": concurrency,
        "runners": {"sleeper": {"command": command}},
        "tasks": [
            {"name": f"t{i}", "prompt": "work", "runner": "sleeper"} for i in range(1, n + 1)
        ],
    }
    path = root / f"plan-{n}-{sleep:g}-{concurrency}{'-sharded' if sharded else ''}.yaml"
    path.write_text(json.dumps(plan, indent=2))  # JSON is YAML
    return path


def check_branch(repo: Path, branch: str, n: int, sharded: bool = False) -> None:
    files = set(git(repo, "ls-tree", "-r", "--name-only", branch).split())
    expected = [output_file(f"t{i}", sharded) for i in range(1, n + 1)]
    missing = [path for path in expected if path not in files]
    if missing:
        raise BenchError(f"{branch} in {repo} lacks {', '.join(missing[:3])}")
    if len(git(repo, "worktree", "list", "--porcelain").split("\n\n")) > 2:  # main + trailer
        raise BenchError(f"worktrees left behind in {repo}")


def timed(argv: list[str], timeout: float, env: dict | None = None):
    """Wall seconds and the finished process; a hung run fails the benchmark."""
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if err.stderr else ""
        started = re.search(r"run (\S+) started", stderr)
        if started:  # do not leave it open on the server
            terminate = [TEMPORAL, "workflow", "terminate", "--address", ADDRESS]
            workflow_id = C.plan_workflow_id(started[1])
            subprocess.run([*terminate, "--workflow-id", workflow_id], capture_output=True)
        tail = stderr.strip()[-2000:]
        raise BenchError(f"{argv[0]} timed out after {timeout:g}s: {tail}") from None
    return time.perf_counter() - start, done


def run_timeout(n: int, sleep: float) -> float:
    """Generous (as if the tasks ran one after another, twice) but bounded."""
    return 60 + 2 * n * sleep


def run_baseline(root: Path, scenario: tuple[int, float, int]) -> dict:
    n, sleep, concurrency = scenario
    repo = make_repo(root)
    args = [str(repo), str(n), f"{sleep:g}", str(concurrency)]
    wall, done = timed(["bash", str(HERE / "baseline.sh"), *args], run_timeout(n, sleep))
    if done.returncode != 0:
        raise BenchError(f"baseline failed ({done.returncode}): {done.stderr.strip()}")
    check_branch(repo, done.stdout.strip(), n)
    return {"wall": wall}


def run_magsag(root: Path, plan: Path, scenario: tuple, env: dict, inproc: bool) -> dict:
    """One timed `magsag run`; also the run's own span and the mean task span past S."""
    n, sleep, concurrency = scenario
    repo = make_repo(root)
    argv = [MAGSAG, "run", str(plan), "--repo", str(repo), "--concurrency", str(concurrency)]
    wall, done = timed([*argv, "--json"], run_timeout(n, sleep), env)
    if done.returncode != 0:
        raise BenchError(f"magsag run failed ({done.returncode}): {done.stderr.strip()}")
    if (INPROC_NOTE in done.stderr) != inproc:
        raise BenchError(f"expected {'an in-process' if inproc else 'the standing'} worker")
    result = json.loads(done.stdout)
    bad = {k: t["status"] for k, t in result["tasks"].items() if t["status"] != "succeeded"}
    if result["status"] != "succeeded" or bad or len(result["tasks"]) != n:
        raise BenchError(f"run {result['run_id']} {result['status']}: {bad}")
    branch = result["integration_branch"]
    if git(repo, "rev-parse", branch).strip() != result["integration_commit"]:
        raise BenchError(f"{branch} is not at the reported integration commit")
    check_branch(repo, branch, n)
    tasks = [_span(t) - sleep for t in result["tasks"].values()]
    return {
        "wall": wall,
        "workflow": _span(result),
        "task_extra": statistics.mean(tasks),
        "run_id": result["run_id"],
    }


def _span(item: dict) -> float:
    start, end = (datetime.fromisoformat(item[k]) for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


def reachable() -> bool:
    host, _, port = ADDRESS.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def server_ready() -> bool:
    """The port answers and so does the namespace (the server registers it after binding)."""
    argv = [TEMPORAL, "operator", "namespace", "describe", "--address", ADDRESS]
    return (
        reachable()
        and subprocess.run([*argv, C.DEFAULT_NAMESPACE], capture_output=True).returncode == 0
    )


def wait_for(ready, what: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not ready after {timeout:g}s")
        time.sleep(0.2)


def polling(env: dict) -> bool:
    """Both of the standing worker's queues have a poller (the queues are the bench's own)."""
    queues = {env["MAGSAG_TASK_QUEUE"]: "workflow", C.host_queue(env["MAGSAG_HOST"]): "activity"}
    for queue, kind in queues.items():
        out = subprocess.run(
            [TEMPORAL, "task-queue", "describe", "--address", ADDRESS,
             "--task-queue", queue, "--task-queue-type", kind, "-o", "json"],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode != 0 or not json.loads(out.stdout).get("pollers"):
            return False
    return True


def start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def magsag_env(state: Path, queue: str) -> dict:
    """Own state dir and own queues, so no other worker on the server picks up our runs."""
    env = dict(os.environ, MAGSAG_STATE_DIR=str(state))
    env.update(MAGSAG_TASK_QUEUE=queue, MAGSAG_HOST=queue)
    return env


def median(runs: list[dict], key: str = "wall") -> float:
    return statistics.median(r[key] for r in runs)


def compile_magsag() -> None:
    """Byte-compile magsag's modules, as `pip install` does. These machines set
    PYTHONDONTWRITEBYTECODE=1, so an editable install never keeps its .pyc files: every
    CLI start, and every workflow the worker's sandbox imports, would compile magsag's
    sources again (~0.1 s of CPU per command), a cost of this setup, not of magsag."""
    packages = ("contracts", "workflows", "activities", "worker", "history", "cli")
    dirs = [
        path
        for package in packages
        for path in importlib.util.find_spec(f"magsag.{package}").submodule_search_locations
    ]
    compileall = [sys.executable, "-m", "compileall", "-q", *dirs]
    subprocess.run(compileall, check=True, capture_output=True)


def bench(args: argparse.Namespace, root: Path) -> list[dict]:
    compile_magsag()
    tag = f"bench-{os.getpid()}"
    envs = {
        # A user without a standing worker has no warm process either (cli/warm.py).
        "inprocess": magsag_env(root / "state", f"{tag}-inproc") | {"MAGSAG_NO_WARM": "1"},
        "standing": magsag_env(root / "state", f"{tag}-standing"),
    }
    procs = []
    try:
        if not reachable():
            print(f"no Temporal server on {ADDRESS}: starting one", file=sys.stderr)
            procs.append(start([MAGSAG, "server"], envs["inprocess"], root / "server.log"))
            wait_for(server_ready, "magsag server", procs[-1])
        procs.append(start([MAGSAG, "worker"], envs["standing"], root / "worker.log"))
        wait_for(lambda: polling(envs["standing"]), "magsag worker", procs[-1])
        warm = write_plan(root, 2, 0, 2)
        for mode, env in envs.items():  # warm-up, not counted
            run_magsag(root, warm, (2, 0, 2), env, inproc=mode == "inprocess")
        return [run_scenario(root, envs, scenario, args.repeat) for scenario in scenarios(args)]
    finally:
        for proc in reversed(procs):
            stop(proc)


def scenarios(args: argparse.Namespace) -> list[tuple[int, float, int]]:
    if args.tasks is None and args.sleep is None and args.concurrency is None:
        return DEFAULT_SCENARIOS
    n, s, c = DEFAULT_SCENARIOS[0]
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return [(pick(args.tasks, n), pick(args.sleep, s), pick(args.concurrency, c))]


def settle() -> None:
    """Let what the run before left the server and the worker to do (closing its
    workflows, a stopping worker's queues) finish before the next timed run: a run
    started at once was measured ~0.1 s slower for it, whatever its mode."""
    time.sleep(SETTLE_S)


def run_scenario(root: Path, envs: dict, scenario: tuple, repeat: int) -> dict:
    """Baseline, in-process and standing runs interleaved, `repeat` times; medians."""
    n, sleep, concurrency = scenario
    plan = write_plan(root, n, sleep, concurrency)
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for i in range(repeat):
        print(f"N={n} S={sleep:g} C={concurrency}: repeat {i + 1}/{repeat}", file=sys.stderr)
        settle()
        runs["baseline"].append(run_baseline(root, scenario))
        for mode, env in envs.items():
            settle()
            runs[mode].append(run_magsag(root, plan, scenario, env, mode == "inprocess"))
    waves = math.ceil(n / concurrency)
    base = median(runs["baseline"])
    summary = {"tasks": n, "sleep": sleep, "concurrency": concurrency, "waves": waves}
    summary["baseline_s"] = base
    for mode in MODES[1:]:
        wall = median(runs[mode])
        summary[f"{mode}_s"] = wall
        summary[f"{mode}_workflow_s"] = median(runs[mode], "workflow")
        summary[f"{mode}_task_extra_s"] = median(runs[mode], "task_extra")
        summary[f"{mode}_ratio"] = wall / base
        summary[f"{mode}_overhead_per_wave_s"] = (wall - base) / waves
    summary["runs"] = runs
    return summary


def table(results: list[dict]) -> str:
    rows = [COLUMNS]
    for r in results:
        rows.append(
            (
                f"N={r['tasks']} S={r['sleep']:g} C={r['concurrency']}",
                f"{r['baseline_s']:.2f}",
                f"{r['inprocess_s']:.2f}",
                f"{r['standing_s']:.2f}",
                f"{r['inprocess_ratio']:.2f}x",
                f"{r['standing_ratio']:.2f}x",
                f"{r['inprocess_overhead_per_wave_s']:.2f}",
                f"{r['standing_overhead_per_wave_s']:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    spans = [
        f"N={r['tasks']} S={r['sleep']:g} C={r['concurrency']}: workflow start to end "
        f"{r['inprocess_workflow_s']:.2f}s / {r['standing_workflow_s']:.2f}s, "
        f"a task's span past S {r['inprocess_task_extra_s']:.2f}s / "
        f"{r['standing_task_extra_s']:.2f}s (in-proc / standing)"
        for r in results
    ]
    return "\n".join([*lines, "", *spans])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, help="N tasks (default: the two built-in scenarios)")
    parser.add_argument("--sleep", type=float, help="S seconds each task sleeps")
    parser.add_argument("--concurrency", type=int, help="C tasks at once")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; the median counts")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="magsag-bench-") as tmp:
        try:
            results = bench(args, Path(tmp))
        except BenchError as err:
            sys.exit(f"bench: {err}")
    print(table(results))
    out = HERE / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": load}
    report = {"when": datetime.now().isoformat(timespec="seconds"), "machine": machine}
    out.write_text(json.dumps({**report, "repeat": args.repeat, "scenarios": results}, indent=2))
    print(f"\nwrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
