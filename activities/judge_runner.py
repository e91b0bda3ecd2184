"""A best-of-N judge that is an agent: `judge: {runner: NAME, prompt: "..."}`.

The named runner (any kind) runs once, as a task's attempt does (activities/agent.py: its
own process group, heartbeats, log, stream parser), in the judge's scratch folder, which
holds a checkout of every candidate that passed. Its prompt carries the task's prompt,
the user's instructions and, for each candidate, its number, runner, diff size and its
diff (cut so that the whole prompt stays one argv element); its environment has what a
judge command gets. The winner is the last number in its final answer (claude and
gemini: the result text; codex: its last message; a command: its last line of output)
that names a candidate that passed. What it used counts in the task's usage.
"""

import re
import time
from dataclasses import dataclass
from pathlib import Path

from temporalio.exceptions import ApplicationError

from magsag.activities.agent import agent_turn, run_and_check
from magsag.activities.agent_output import read_from
from magsag.contracts import constants as C
from magsag.contracts.activities import AgentInput, JudgeInput
from magsag.contracts.failures import AttemptFailure
from magsag.contracts.run import Usage

# Each diff is cut to DIFF_BYTES, and all of them together to DIFF_BUDGET_BYTES: the
# prompt is one argv element, which Linux caps at 128 KiB.
DIFF_BYTES = 20_000
DIFF_BUDGET_BYTES = 90_000
PROMPT_BYTES = 12_000


@dataclass
class Layout:
    """What the judge looks at: its folder, the candidates' environment, diffs and sizes."""

    scratch: Path
    env: dict[str, str]
    diffs: dict[int, str]
    sizes: dict[int, int]
    log_path: Path


async def ask(inp: JudgeInput, layout: Layout, task_prompt: str):
    """(winner, why, usage); no winner: why the judge gave none."""
    agent = AgentInput(
        run_id=inp.run_id,
        task=inp.task,
        attempt=1,
        prompt=prompt(inp, layout, task_prompt),
        runner=inp.runner,
        repo=inp.repo,
        branch=C.task_branch(inp.run_id, inp.task),
        worktree=str(layout.scratch),
        base_commit=inp.base_commit,
        log_dir=inp.log_dir,
        timeout_seconds=C.JUDGE_TIMEOUT.total_seconds(),
    )
    who = f"the judge ({inp.runner_name})"
    layout.log_path.parent.mkdir(parents=True, exist_ok=True)
    start = layout.log_path.stat().st_size if layout.log_path.exists() else 0
    async with agent_turn(agent) as pidfile:
        deadline = time.monotonic() + agent.timeout_seconds
        try:
            ran = await run_and_check(
                agent, pidfile, layout.log_path, deadline, failed_event="judge_failed",
                env=layout.env,
            )  # fmt: skip
        except ApplicationError as err:
            failure = AttemptFailure.of(err)
            why = err.message.split("; last output:")[0]
            return None, f"{who} failed: {why}, see {layout.log_path}", _spent(failure)
    answer = ran.reply if ran.reply is not None else _last_line(read_from(layout.log_path, start))
    passed = {c.number for c in inp.candidates}
    named = [int(n) for n in re.findall(r"\d+", answer) if int(n) in passed]
    if not named:
        return None, f"{who} named none of {sorted(passed)} in its answer", ran.usage
    return named[-1], f"chosen by {who}", ran.usage


def prompt(inp: JudgeInput, layout: Layout, task_prompt: str) -> str:
    numbers = ", ".join(str(c.number) for c in inp.candidates)
    each = min(DIFF_BYTES, DIFF_BUDGET_BYTES // len(inp.candidates))
    parts = [
        f"Judge {len(inp.candidates)} solutions of one task, each made by a different "
        "agent, and choose the best. Every one of them passed the task's checks. This "
        "folder holds a checkout of each, named by its number (./1, ./2, ...); read them "
        "as you need, but change nothing.",
        f"## The task\n\n{_cut(task_prompt.strip(), PROMPT_BYTES)[0]}",
    ]
    if inp.instructions.strip():
        parts.append(f"## How to judge\n\n{inp.instructions.strip()}")
    for c in inp.candidates:
        diff, cut = _cut(layout.diffs[c.number], each)
        note = (
            f"\n\n(The diff is cut here: {len(diff.encode())} of "
            f"{len(layout.diffs[c.number].encode())} bytes shown; all of it is in "
            f"{layout.env[f'MAGSAG_CANDIDATE_{c.number}_DIFF']}, its files in ./{c.number}.)"
            if cut
            else ""
        )
        parts.append(
            f"## Candidate {c.number} (runner {c.runner}, {layout.sizes[c.number]} lines "
            f"changed, checkout ./{c.number})\n\n```diff\n{diff}\n```{note}"
        )
    parts.append(
        f"Say briefly why, then end your answer with the number of the best candidate "
        f"({numbers}) alone on the last line."
    )
    return "\n\n".join(parts) + "\n"


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` bytes of text, ending at a line's end; and whether it was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text, False
    kept = data[:limit].decode(errors="ignore")
    return kept.rsplit("\n", 1)[0] if "\n" in kept else kept, True


def _last_line(printed: str) -> str:
    lines = [line for line in printed.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _spent(failure: AttemptFailure | None) -> Usage:
    return failure.usage if failure else Usage()
