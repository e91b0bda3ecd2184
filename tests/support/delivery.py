"""Delivering runs in tests: a bare repository as the remote, a stand-in `gh` on PATH
(tests/support/gh/gh) that keeps its pull requests and every call in a JSON file."""

import json
import os
import shutil
from pathlib import Path

from tests.support.gitrepo import git_out

GH_DIR = Path(__file__).parent / "gh"


def bare_origin(repo: Path, folder: Path) -> Path:
    """A bare repository, added to repo as its remote `origin`."""
    remote = folder / "remote.git"
    git_out(folder, "init", "-q", "--bare", str(remote))
    git_out(repo, "remote", "add", "origin", str(remote))
    return remote


class StandinGh:
    def __init__(self, folder: Path) -> None:
        self.state = folder / "gh-state.json"

    def env(self, base: dict) -> dict:
        """base with the stand-in first on PATH."""
        path = f"{GH_DIR}{os.pathsep}{base.get('PATH', '')}"
        return base | {"PATH": path, "GH_STANDIN_STATE": str(self.state)}

    def _read(self) -> dict:
        if not self.state.exists():
            return {"calls": [], "prs": []}
        return json.loads(self.state.read_text())

    def prs(self) -> list[dict]:
        return self._read()["prs"]

    def calls(self) -> list[list[str]]:
        return [call["argv"] for call in self._read()["calls"]]


def standin_gh_here(folder: Path, monkeypatch) -> StandinGh:
    """The stand-in first on the PATH of this process, whose worker runs the activities."""
    standin = StandinGh(folder)
    for name, value in standin.env({"PATH": os.environ["PATH"]}).items():
        monkeypatch.setenv(name, value)
    return standin


def path_without_gh(folder: Path) -> str:
    """A PATH with git on it and no gh, whatever this machine has installed."""
    bin_dir = folder / "bin-without-gh"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "git").symlink_to(shutil.which("git"))
    return str(bin_dir)
