"""Real magsag processes for crash tests: start them, SIGKILL them, never leak them."""

import os
import signal
import subprocess
import uuid
from pathlib import Path

from tests.support.cli import MAGSAG


class Processes:
    """Starts `magsag ...` processes; stop_all() kills whatever is still running."""

    def __init__(self, env: dict, log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self._started: list[subprocess.Popen] = []

    def start(self, *args: str, name: str) -> subprocess.Popen:
        return self.start_with(self.env, *args, name=name)

    def start_with(self, env: dict, *args: str, name: str) -> subprocess.Popen:
        """Start `magsag <args>` with its own environment (another host's, say)."""
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [MAGSAG, *args], env=env, stdout=log, stderr=log, start_new_session=True
        )
        self._started.append(proc)
        return proc

    @staticmethod
    def kill_hard(proc: subprocess.Popen) -> None:
        """SIGKILL the process alone (not its group): what an OOM kill or a crash does."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self._started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return process_state(pid) not in (None, "Z")


def process_state(pid: int) -> str | None:
    """The process's state letter (R, S, T when stopped, Z...), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _live(proc_file: str, matches) -> list[int]:
    """Live processes whose /proc/<pid>/<proc_file> content matches."""
    found = []
    for path in Path("/proc").glob(f"[0-9]*/{proc_file}"):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # ended while we looked
        if matches(data) and pid_alive(int(path.parent.name)):
            found.append(int(path.parent.name))
    return found


def processes_of_run(run_id: str, host: str | None = None) -> list[int]:
    """Live processes whose environment marks them as an agent of this run (and, with
    `host`, of that host's worker)."""
    markers = {f"MAGSAG_RUN_ID={run_id}".encode()}
    if host is not None:
        markers.add(f"MAGSAG_HOST={host}".encode())
    return _live("environ", lambda environ: markers <= set(environ.split(b"\0")))


def processes_named(name: str) -> list[int]:
    """Live processes whose argv[0] is name (`exec -a name ...` sets it), from /proc."""
    return _live("cmdline", lambda argv: argv.split(b"\0", 1)[0] == name.encode())


def unique_name() -> str:
    return f"magsag-test-daemon-{uuid.uuid4().hex[:8]}"


def daemon(name: str, tmp_path: Path, holds_stdout: bool = False) -> str:
    """Shell lines starting a daemon that leaves the agent's process group and session,
    findable by its name; they return once it has left. Unless it holds_stdout, its
    output is its own (it holds no pipe of the agent)."""
    left = tmp_path / f"{name}.left"
    own_output = "" if holds_stdout else " </dev/null >/dev/null 2>&1"
    return (
        f"setsid bash -c 'touch {left}; exec -a {name} sleep 600'{own_output} & disown;"
        f" until [ -e {left} ]; do sleep 0.05; done"
    )
