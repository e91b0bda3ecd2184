"""Benchmark across hosts: what a run on a remote URL costs, and how fast a lost host's
task starts again elsewhere.

1. The same scenario (N tasks that sleep S seconds and write a file, concurrency C,
   standing workers) three ways, interleaved: a local path with one worker (host-bound,
   nothing pushed), a git:// URL (`git daemon` on 127.0.0.1) with one worker, and the
   same URL with three workers as three hosts (own --host, own state dir, own clone).
   Wall time, and each task's span past S (what fetch and push add per task).
2. Host death: a URL run whose one task runs 20 s, on two hosts; when its agent has
   started, the worker of the host running it is SIGKILLed, and the time until the task's
   agent starts on the other host is measured.

Run with `make bench-hosts`; see bench/README.md ("Hosts").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import (  # bench/run.py: the same server, worker and repository helpers
    ADDRESS,
    MAGSAG,
    TEMPORAL,
    BenchError,
    _span,
    check_branch,
    compile_magsag,
    magsag_env,
    make_repo,
    reachable,
    run_timeout,
    server_ready,
    start,
    stop,
    timed,
    wait_for,
    write_plan,
)

from magsag.contracts import constants as C

MODES = ("path, 1 host", "URL, 1 host", "URL, 3 hosts")


class Served:
    """Bare repositories under a folder, served by `git daemon` on 127.0.0.1."""

    def __init__(self, root: Path, port: int = 19500) -> None:
        self.root, self.port = root, port
        argv = ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                "--listen=127.0.0.1", f"--port={port}", f"--base-path={root}",
                str(root)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)

    def new_remote(self) -> tuple[str, Path]:
        """A fresh bare copy of the bench's small repository: (git:// URL, its path)."""
        seed = make_repo(self.root)
        bare = seed.with_suffix(".git")
        subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
        return f"git://127.0.0.1:{self.port}/{bare.name}", bare


def start_hosts(root: Path, env: dict, names: list[str]) -> list[subprocess.Popen]:
    """Workers as hosts: each its own --host name and state dir (its own clones)."""
    procs = []
    for name in names:
        host_env = dict(env, MAGSAG_STATE_DIR=str(root / name))
        procs.append(start([MAGSAG, "worker", "--host", name], host_env, root / f"{name}.log"))
    return procs


def polled(env: dict, names: list[str]) -> bool:
    """Each named host's worker polls the any-host queue (identities end in host=NAME)."""
    queue = C.any_host_queue(env["MAGSAG_TASK_QUEUE"])
    out = subprocess.run(
        [TEMPORAL, "task-queue", "describe", "--address", ADDRESS, "--task-queue", queue,
         "--task-queue-type", "activity", "-o", "json"],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        return False
    pollers = json.loads(out.stdout).get("pollers") or []
    return all(any(p["identity"].endswith(f"host={name}") for p in pollers) for name in names)


def ended(run_id: str, env: dict) -> bool:
    shown = subprocess.run([MAGSAG, "status", run_id, "--json"], env=env, capture_output=True)
    return shown.returncode == 0 and json.loads(shown.stdout)["status"] != "running"


def one_run(plan: Path, repo: str, scenario: tuple, env: dict, check: Path) -> dict:
    n, sleep, concurrency = scenario
    argv = [MAGSAG, "run", str(plan), "--repo", repo, "--concurrency", str(concurrency), "--json"]
    wall, done = timed(argv, run_timeout(n, sleep), env)
    if done.returncode != 0:
        raise BenchError(f"magsag run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    check_branch(check, result["integration_branch"], n)
    hosts = {t.get("host") for t in result["tasks"].values()}
    extra = statistics.mean(_span(t) - sleep for t in result["tasks"].values())
    return {"wall": wall, "task_extra": extra, "hosts": len(hosts)}


def spread(root: Path, env: dict, served: Served, scenario: tuple, repeat: int) -> dict:
    plan = write_plan(root, *scenario)
    rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for i in range(repeat + 1):  # the first round warms up and is not counted
        for j, mode in enumerate(MODES):
            names = [f"r{i}m{j}h{k}" for k in range(1, 4 if "3" in mode else 2)]
            if mode.startswith("path"):  # the host queue the CLI sends a path run to
                names = [env["MAGSAG_HOST"]]
            workers = start_hosts(root, env, names)
            try:
                wait_for(functools.partial(polled, env, names), f"{len(names)} workers")
                if mode.startswith("path"):
                    repo = make_repo(root)
                    row = one_run(plan, str(repo), scenario, env, repo)
                else:
                    url, bare = served.new_remote()
                    row = one_run(plan, url, scenario, env, bare)
            finally:
                for worker in workers:
                    stop(worker)
            print(f"  {mode}: {row['wall']:.2f} s, {row['hosts']} host(s)", file=sys.stderr)
            if i:
                rows[mode].append(row)
    return {
        mode: {
            "wall_s": statistics.median(r["wall"] for r in runs),
            "task_extra_s": statistics.median(r["task_extra"] for r in runs),
            "hosts_used": max(r["hosts"] for r in runs),
        }
        for mode, runs in rows.items()
    }


def host_death(root: Path, env: dict, served: Served, trials: int) -> list[float]:
    """Seconds from SIGKILL of the host running the task to its agent starting elsewhere."""
    marks = root / "marks"
    timings = []
    for trial in range(trials):
        marks.mkdir(exist_ok=True)
        for old in marks.iterdir():
            old.unlink()
        plan = root / f"death-{trial}.json"
        script = f'touch {marks}/"$MAGSAG_HOST"; sleep 20; echo done > out.txt'
        runners = {"sh": {"command": ["bash", "-c", script]}}
        task = {"name": "t1", "prompt": "x", "runner": "sh"}
        plan.write_text(json.dumps({"name": "death", "runners": runners, "tasks": [task]}))
        names = [f"d{trial}-h1", f"d{trial}-h2"]
        workers = dict(zip(names, start_hosts(root, env, names), strict=True))
        try:
            wait_for(functools.partial(polled, env, names), "2 workers")
            url, _ = served.new_remote()
            argv = [MAGSAG, "run", str(plan), "--repo", url, "--detach"]
            run_id = subprocess.run(argv, env=env, capture_output=True, text=True).stdout.strip()
            wait_for(lambda: any(marks.iterdir()), "the agent to start", timeout=60)
            first = next(marks.iterdir()).name
            workers[first].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            workers[first].wait()
            wait_for(lambda: len(list(marks.iterdir())) == 2, "the task elsewhere", timeout=120)
            timings.append(time.monotonic() - killed)
            print(f"  trial {trial + 1}: {timings[-1]:.1f} s", file=sys.stderr)
            wait_for(functools.partial(ended, run_id, env), "the run to end", timeout=120)
        finally:
            for worker in workers.values():
                if worker.poll() is None:
                    stop(worker)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=float, nargs=3, default=[20, 5, 10],
                        metavar=("N", "S", "C"))  # fmt: skip
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--deaths", type=int, default=3)
    args = parser.parse_args()
    n, sleep, concurrency = args.scenario
    scenario = (int(n), sleep, int(concurrency))
    compile_magsag()
    with tempfile.TemporaryDirectory(prefix="magsag-bench-hosts-") as tmp:
        root = Path(tmp)
        env = magsag_env(root / "cli", f"hosts-{int(time.time())}")
        (root / "served").mkdir()
        served = Served(root / "served")
        server = None
        try:
            if not reachable():
                server = start([MAGSAG, "server"], env, root / "server.log")
                wait_for(server_ready, "magsag server", server)
            print(f"N={scenario[0]} S={sleep:g} C={scenario[2]}:", file=sys.stderr)
            table = spread(root, env, served, scenario, args.repeat)
            print("host deaths:", file=sys.stderr)
            deaths = host_death(root, env, served, args.deaths)
        finally:
            served.proc.terminate()
            if server is not None:
                stop(server)
    base = table[MODES[0]]["wall_s"]
    print(f"N={scenario[0]} S={sleep:g} C={scenario[2]}, standing workers, median of {args.repeat}")
    print("mode            wall s   vs path   task span past S, s   hosts used")
    for mode, row in table.items():
        print(f"{mode:14s}  {row['wall_s']:6.2f}   {row['wall_s'] / base:6.2f}x   "
              f"{row['task_extra_s']:19.2f}   {row['hosts_used']:10d}")  # fmt: skip
    print("host death to the task's agent starting elsewhere: "
          + ", ".join(f"{t:.1f} s" for t in deaths))  # fmt: skip
    out = Path(__file__).parent / "results" / "hosts-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"scenario": scenario, "modes": table, "deaths_s": deaths}))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
