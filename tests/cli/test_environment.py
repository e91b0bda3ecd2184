"""A state directory or worktree root that cannot be written: refused at start, nothing made.

Tests run as root, for whom permission bits do not apply, so "not writable" is an
immutable directory (chattr +i), which root cannot write in either."""

import subprocess
from pathlib import Path

import pytest

from tests.support.cli import magsag

PLAN = "runners: {sh: {command: [bash, -c, '{prompt}']}}\ntasks: [{name: a, prompt: 'true'}]\n"


@pytest.fixture
def immutable(tmp_path):
    """Makes an empty directory nobody can write in; unlocked again after the test."""
    made: list[Path] = []

    def make(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported here")
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory\n")
    return path


# Each case: (MAGSAG_STATE_DIR or None, --worktree-root or None, expected error) from
# tmp_path and the immutable-directory maker.
CASES = {
    "state-dir-under-a-file": lambda t, imm: (
        regular_file(t) / "state", None,
        f"state directory {t / 'a-file' / 'state'} (MAGSAG_STATE_DIR): cannot be created: "
        f"{t / 'a-file'} is not a directory",
    ),
    "state-dir-is-a-file": lambda t, imm: (
        regular_file(t), None,
        f"state directory {t / 'a-file'} (MAGSAG_STATE_DIR): it is not a directory",
    ),
    "state-dir-not-writable": lambda t, imm: (
        imm("locked"), None,
        f"state directory {t / 'locked'} (MAGSAG_STATE_DIR): it is not writable by this user",
    ),
    "state-dir-in-a-dir-not-writable": lambda t, imm: (
        imm("locked") / "state", None,
        f"state directory {t / 'locked' / 'state'} (MAGSAG_STATE_DIR): cannot be created: "
        f"{t / 'locked'} is not writable by this user",
    ),
    "worktree-root-under-a-file": lambda t, imm: (
        None, regular_file(t) / "wt",
        f"--worktree-root {t / 'a-file' / 'wt'}: cannot be created: {t / 'a-file'} is not a "
        "directory",
    ),
    "worktree-root-not-writable": lambda t, imm: (
        None, imm("locked"),
        f"--worktree-root {t / 'locked'}: it is not writable by this user",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
async def test_an_unwritable_place_exits_2_and_creates_nothing(
    case, tmp_path, repo, cli_env, client, immutable
):
    state, root, expected = CASES[case](tmp_path, immutable)
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    env = {**cli_env, "MAGSAG_STATE_DIR": str(state)} if state else cli_env
    args = ["--worktree-root", root] if root else []
    refs = subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True).stdout
    before = sorted(tmp_path.rglob("*"))

    done = magsag("run", plan, "--repo", repo, *args, env=env)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {expected}"]
    assert subprocess.run(["git", "for-each-ref"], cwd=repo, capture_output=True).stdout == refs
    assert sorted(tmp_path.rglob("*")) == before  # no state dir, no worktree root
    assert (await client.count_workflows(f'MagsagRepo = "{repo}"')).count == 0
