"""What a --repo names: a path on this host, or a remote any worker can reach."""

import pytest

from magsag.contracts import remotes


@pytest.mark.parametrize(
    "repo",
    ["file:///srv/git/app.git", "ssh://git@example.com/acme/app.git", "git://127.0.0.1:9418/a",
     "https://github.com/acme/app.git", "git@github.com:acme/app.git", "host:repos/app.git"],
)  # fmt: skip
def test_remote_urls_are_recognised(repo):
    assert remotes.is_url(repo)


@pytest.mark.parametrize("repo", [".", "/home/me/app", "../app", "app", "./a:b", "/x/y:z"])
def test_paths_are_not_urls(repo):
    assert not remotes.is_url(repo)


def test_a_password_is_found_and_never_shown():
    url = "https://me:t0ken@example.com:8443/acme/app.git"
    assert remotes.password_in(url)
    assert remotes.shown(url) == "https://me:***@example.com:8443/acme/app.git"
    assert not remotes.password_in("https://me@example.com/acme/app.git")
    assert not remotes.password_in("git@github.com:acme/app.git")


def test_worker_paths_resolve_under_each_hosts_state_dir(tmp_path):
    path = remotes.worker_path("worktrees", "run-1", "task")
    assert remotes.resolve(path, tmp_path) == f"{tmp_path}/worktrees/run-1/task"
    assert remotes.resolve("/abs/elsewhere", tmp_path) == "/abs/elsewhere"
