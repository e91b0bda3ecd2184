"""judge_candidates: pick a best-of-N task's winner, and give the task its branch.

Every candidate that passed its checks and outputs is measured by its diff against the
task's base (lines added plus removed). With a `judge:` command, the judge runs with each
candidate's checkout and diff in its environment and prints the winner's number; without
one (or when the judge fails, says nothing usable or names a candidate that did not
pass), the smallest diff wins, then the earliest finished. A candidate that changed
nothing wins only when no other passed. The task's own branch then points at the
winner's commit; every candidate's branch stays as it is.

Re-run after a crash it converges: checkouts left by the lost run are replaced, the
judge runs again, and the task's branch is set to the same kind of answer.
"""

import asyncio
import os
import re
import shutil
import time
from pathlib import Path

from temporalio import activity

from magsag.activities import judge_runner, plan_store, remote_runs
from magsag.activities.agent_output import CappedLog, log_cap_bytes, read_from
from magsag.activities.git import git
from magsag.activities.group_run import DeadlineReached, run_in_group
from magsag.activities.keepalive import heartbeating
from magsag.activities.process import kill_recorded_group
from magsag.activities.worktree import _worktree_admin as worktree_admin
from magsag.contracts import constants as C
from magsag.contracts import remotes
from magsag.contracts.activities import JudgeInput, JudgeOutput
from magsag.contracts.run import CandidateResult, Usage

JUDGE_TIMEOUT_SECONDS = C.JUDGE_TIMEOUT.total_seconds()
_NUMBER = re.compile(r"^\s*(\d+)\s*$")
# (winner, why, what the judge used); no winner: why the judge gave none.
Verdict = tuple[int | None, str, Usage]


@activity.defn
@heartbeating
async def judge_candidates(inp: JudgeInput) -> JudgeOutput:
    if remotes.is_url(inp.repo):
        return await remote_runs.judge_candidates(inp, judge_candidates)
    sizes = {c.number: await _diff_lines(inp, c) for c in inp.candidates}
    verdict = await _ask_judge(inp, sizes) if inp.judge or inp.runner else None
    winner, why = verdict[:2] if verdict and verdict[0] is not None else _smallest(inp, sizes)
    if verdict and verdict[0] is None:
        why += f" ({verdict[1]})"
    chosen = next(c for c in inp.candidates if c.number == winner)
    await _point_task_branch(inp, chosen.commit or inp.base_commit)
    reasons = {
        c.number: _lost(c, chosen, sizes, bool(verdict and verdict[0])) for c in inp.candidates
    }
    reasons[winner] = why
    usage = verdict[2] if verdict else Usage()
    return JudgeOutput(winner=winner, diff_lines=sizes, reasons=reasons, usage=usage)


async def _diff_lines(inp: JudgeInput, candidate: CandidateResult) -> int:
    """Lines added plus removed by the candidate (a binary file counts as one)."""
    if candidate.commit is None:
        return 0
    out = await git("diff", "--numstat", inp.base_commit, candidate.commit, cwd=inp.repo)
    total = 0
    for line in out.stdout.splitlines():
        added, removed, _ = line.split("\t", 2)
        total += 1 if added == "-" else int(added) + int(removed)
    return total


def _smallest(inp: JudgeInput, sizes: dict[int, int]) -> tuple[int, str]:
    """Without a judge: the smallest diff, then the earliest finished (candidates come in
    the order they finished); one that changed nothing only when no other passed."""
    order = {c.number: i for i, c in enumerate(inp.candidates)}

    def rank(c: CandidateResult):
        return (c.commit is None, sizes[c.number], order[c.number])

    best = min(inp.candidates, key=rank)
    if len(inp.candidates) == 1:
        return best.number, "the only candidate that passed"
    ties = [c for c in inp.candidates if rank(c)[:2] == rank(best)[:2]]
    lines = f"{sizes[best.number]} lines"
    if len(ties) > 1:
        return best.number, f"smallest diff ({lines}), finished first among equals"
    return best.number, f"smallest diff ({lines}) of {len(inp.candidates)} that passed"


def _lost(c: CandidateResult, winner: CandidateResult, sizes: dict[int, int], judged: bool) -> str:
    if judged:
        return f"passed; the judge chose candidate {winner.number}"
    if c.commit is None and winner.commit is not None:
        return "passed, but changed nothing"
    if sizes[c.number] > sizes[winner.number]:
        return f"passed; larger diff ({sizes[c.number]} lines) than candidate {winner.number}"
    return f"passed; same diff size as candidate {winner.number}, finished later"


async def _ask_judge(inp: JudgeInput, sizes: dict[int, int]) -> Verdict:
    """The judge's verdict, with a checkout and the diff of each candidate laid out in
    the scratch folder (a git repository of its own: codex runs only in one)."""
    scratch = Path(inp.scratch)
    pidfile = Path(f"{scratch}.pid")
    await asyncio.to_thread(kill_recorded_group, pidfile)  # a lost run's judge
    await _clear(inp.repo, scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    await git("init", "--quiet", cwd=scratch)
    env = {"MAGSAG_CANDIDATES": " ".join(str(c.number) for c in inp.candidates)}
    diffs = {}
    for c in inp.candidates:
        checkout, diff = (
            scratch / str(c.number),
            Path(inp.log_dir) / f"{inp.task}.candidate-{c.number}.diff",
        )
        await worktree_admin(
            inp.repo, "add", "--detach", "--force", str(checkout), c.commit or inp.base_commit
        )
        text = (
            await git("diff", inp.base_commit, c.commit or inp.base_commit, cwd=inp.repo)
        ).stdout
        diff.parent.mkdir(parents=True, exist_ok=True)
        diff.write_text(text)
        diffs[c.number] = text
        prefix = f"MAGSAG_CANDIDATE_{c.number}_"
        env |= {
            f"{prefix}WORKTREE": str(checkout),
            f"{prefix}DIFF": str(diff),
            f"{prefix}RUNNER": c.runner,
            f"{prefix}COMMIT": c.commit or "",
        }
    log_path = Path(inp.log_dir) / f"{inp.task}.judge.log"
    try:
        if inp.runner is not None:
            layout = judge_runner.Layout(scratch, env, diffs, sizes, log_path)
            return await judge_runner.ask(inp, layout, await _prompt(inp))
        return await _ask_command(inp, scratch, env, pidfile, log_path)
    finally:
        pidfile.unlink(missing_ok=True)
        await _clear(inp.repo, scratch)


async def _ask_command(inp: JudgeInput, scratch: Path, env, pidfile, log_path) -> Verdict:
    """The judge command's verdict: the last line it printed that is a number."""
    env = dict(os.environ) | env
    env |= {C.ENV_RUN_ID: inp.run_id, C.ENV_TASK: inp.task, C.ENV_PROMPT: await _prompt(inp)}
    try:
        with log_path.open("ab") as file:
            log = CappedLog(file, log_cap_bytes())
            start = log.tell()
            deadline = time.monotonic() + JUDGE_TIMEOUT_SECONDS
            code = await run_in_group(
                ["bash", "-c", inp.judge], scratch, env, log, pidfile, 1, deadline
            )
    except DeadlineReached:
        return None, f"the judge timed out after {JUDGE_TIMEOUT_SECONDS:g}s", Usage()
    printed = read_from(log_path, start)
    if code != 0:
        return None, f"the judge exited {code}, see {log_path}", Usage()
    numbers = [int(m.group(1)) for line in printed.splitlines() if (m := _NUMBER.match(line))]
    passed = {c.number for c in inp.candidates}
    if not numbers or numbers[-1] not in passed:
        said = numbers[-1] if numbers else "no number"
        return None, f"the judge printed {said}, not one of {sorted(passed)}", Usage()
    return numbers[-1], "chosen by the judge", Usage()


async def _prompt(inp: JudgeInput) -> str:
    if inp.prompt or not inp.plan_ref:
        return inp.prompt
    return await plan_store.prompt_of(inp.repo, inp.plan_ref, inp.task)


async def _clear(repo: str, scratch: Path) -> None:
    """Remove the judge's checkouts (a lost run's too); they hold nothing of value."""
    if scratch.exists():
        for checkout in scratch.iterdir():
            await worktree_admin(repo, "remove", "--force", "--force", str(checkout), check=False)
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    await worktree_admin(repo, "prune", check=False)


async def _point_task_branch(inp: JudgeInput, commit: str) -> None:
    """The task's own branch at the winner's commit, as if one agent had made it."""
    message = f"magsag: {inp.task} takes its best-of-N winner"
    await git("update-ref", "-m", message, f"refs/heads/{inp.branch}", commit, cwd=inp.repo)
