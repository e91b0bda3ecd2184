"""What `magsag gc` drops from a host's clone once a run is over: every copy of the
remote's branches and the host's branches whose work the remote has, the same commit or
the same changes (a checkpoint the host committed but never pushed before it died, its
task redone elsewhere); a branch holding work only this host has stays."""

from magsag.activities.clone_refs import prune, refresh, runs_in
from magsag.contracts import constants as C
from tests.support.gitrepo import commit_file, git_out, make_repo

RUN = "r1"


async def test_a_clone_keeps_only_the_work_the_remote_lacks(tmp_path):
    clone = make_repo(tmp_path / "clone")
    base = git_out(clone, "rev-parse", "HEAD")
    # The remote's integration branch: another task's merge, then this task's change as
    # redone on another host (the same patch on another parent).
    commit_file(clone, "other.txt", "o", "another task")
    redone = commit_file(clone, "t.txt", "3", "task t, redone elsewhere")
    # This host's branches: its unpushed checkpoint of t, a WIP of work found nowhere
    # else, and a branch whose tip the remote has.
    git_out(clone, "checkout", "-q", "-b", "lost", base)
    unpushed = commit_file(clone, "t.txt", "3", "task t, before the host died")
    git_out(clone, "checkout", "-q", "-b", "wip", base)
    wip = commit_file(clone, "half.txt", "half", "WIP of the victim")
    git_out(clone, "checkout", "-q", "main")
    mine, copies = (
        f"refs/heads/{C.BRANCH_PREFIX}/{RUN}",
        f"refs/remotes/origin/{C.BRANCH_PREFIX}/{RUN}",
    )
    for ref, sha in [
        (f"{copies}/integration", redone),
        (f"{copies}/tasks/u", base),
        (f"{mine}/tasks/t", unpushed),
        (f"{mine}/tasks/victim", wip),
        (f"{mine}/tasks/u", base),
    ]:
        git_out(clone, "update-ref", ref, sha)

    dropped, kept = await prune(clone, RUN, (await runs_in(clone))[RUN])

    assert (dropped, kept) == (4, 1)
    left = git_out(
        clone, "for-each-ref", "--format=%(refname) %(objectname)", f"{mine}/", f"{copies}/"
    )
    assert left == f"{mine}/tasks/victim {wip}"


async def test_a_returning_host_reads_the_remotes_integration_branch_again(tmp_path):
    """Its copy is from before it died: the task it committed but never pushed was redone
    and merged elsewhere since, which only the remote's branch now shows."""
    remote = make_repo(tmp_path / "remote")
    base = git_out(remote, "rev-parse", "HEAD")
    integration = f"{C.BRANCH_PREFIX}/{RUN}/integration"
    git_out(remote, "branch", integration, base)
    git_out(remote, "checkout", "-q", "-b", "scratch")
    unpushed = commit_file(remote, "t.txt", "3", "task t, before the host died")
    clone = tmp_path / "clone.git"
    git_out(tmp_path, "clone", "-q", "--bare", str(remote), str(clone))
    for ref, sha in [
        (f"refs/heads/{integration}", ""),  # the bare clone's own copy of every branch
        ("refs/heads/scratch", ""),
        (f"refs/remotes/origin/{integration}", base),  # the copy it kept, from before
        (f"refs/heads/{C.BRANCH_PREFIX}/{RUN}/tasks/t", unpushed),
    ]:
        git_out(clone, *(["update-ref", ref, sha] if sha else ["update-ref", "-d", ref]))
    git_out(remote, "checkout", "-q", integration)
    commit_file(remote, "t.txt", "3", "task t, redone elsewhere")

    refs = (await runs_in(clone))[RUN]
    assert await refresh(clone, RUN, refs)
    assert await prune(clone, RUN, refs) == (2, 0)
    assert git_out(clone, "for-each-ref", f"refs/heads/{C.BRANCH_PREFIX}/") == ""
