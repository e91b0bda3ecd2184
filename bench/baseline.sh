#!/usr/bin/env bash
# The baseline magsag is measured against: the same work for N independent tasks, as bare
# bash + git. Each task gets a worktree on its own branch from the integration tip, runs the
# same command as the benchmark plan, commits, is merged into the integration branch (one at
# a time, under flock, with merge-tree + commit-tree + update-ref, as magsag does) and its
# worktree is removed. Prints the integration branch.
#
# usage: baseline.sh REPO N SLEEP_SECONDS CONCURRENCY
set -euo pipefail

if [[ $# -ne 4 ]]; then
    echo "usage: $0 REPO N SLEEP_SECONDS CONCURRENCY" >&2
    exit 2
fi
REPO=$(cd "$1" && pwd)
N=$2
SLEEP=$3
CONCURRENCY=$4
RUN=baseline-$$
INTEGRATION=refs/heads/$RUN/integration
WT_ROOT=$(mktemp -d)
trap 'rm -rf "$WT_ROOT"' EXIT
export REPO SLEEP RUN INTEGRATION WT_ROOT
export GIT_AUTHOR_NAME=baseline GIT_AUTHOR_EMAIL=baseline@localhost
export GIT_COMMITTER_NAME=baseline GIT_COMMITTER_EMAIL=baseline@localhost

git -C "$REPO" update-ref "$INTEGRATION" HEAD ""

task() {
    set -euo pipefail
    local name=$1 wt=$WT_ROOT/$1 base commit tip tree new
    base=$(git -C "$REPO" rev-parse "$INTEGRATION")
    # Concurrent `git worktree add`/`remove` read each other's half-made admin directories
    # and fail ("failed to read .git/worktrees/<x>/commondir"): one at a time.
    {
        flock 8
        git -C "$REPO" worktree add --quiet -b "$RUN/tasks/$name" "$wt" "$base"
    } 8>"$WT_ROOT/worktree.lock"
    (cd "$wt" && MAGSAG_TASK=$name bash -c "sleep $SLEEP; echo done > out-\$MAGSAG_TASK.txt")
    git -C "$wt" add -A
    git -C "$wt" commit --quiet --no-verify -m "baseline: $name"
    commit=$(git -C "$wt" rev-parse HEAD)
    {
        flock 9
        tip=$(git -C "$REPO" rev-parse "$INTEGRATION")
        tree=$(git -C "$REPO" merge-tree --write-tree "$tip" "$commit")
        new=$(git -C "$REPO" commit-tree "$tree" -p "$tip" -p "$commit" -m "integrate $name")
        git -C "$REPO" update-ref "$INTEGRATION" "$new" "$tip"
    } 9>"$WT_ROOT/integration.lock"
    {
        flock 8
        git -C "$REPO" worktree remove "$wt"
    } 8>"$WT_ROOT/worktree.lock"
}
export -f task

seq -f "t%g" "$N" | xargs -P "$CONCURRENCY" -I{} bash -c 'task "$1"' _ {}
echo "$RUN/integration"
