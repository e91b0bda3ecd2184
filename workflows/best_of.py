"""Best-of-N bookkeeping for the task workflow: what each candidate did, and the task's
result once the judge has picked. Pure functions of workflow state (no commands)."""

from datetime import datetime

from magsag.contracts import constants as C
from magsag.contracts.activities import AgentOutput, JudgeInput, JudgeOutput
from magsag.contracts.run import CandidateResult, TaskInput, TaskResult, TaskStatus, Usage


def passed(
    number: int, runner: str, inp: TaskInput, agent: AgentOutput, usage: Usage, at: datetime
):
    return CandidateResult(
        number=number,
        runner=runner,
        branch=C.task_branch(inp.run_id, C.candidate_name(inp.task.name, number)),
        status=TaskStatus.SUCCEEDED,
        commit=agent.commit,
        changed_files=agent.changed_files,
        attempts=agent.attempt,
        usage=usage,
        finished_at=at,
    )


def not_passed(
    number: int,
    runner: str,
    inp: TaskInput,
    status: TaskStatus,
    error: str,
    commit: str | None,
    attempts: int,
    usage: Usage,
    at: datetime,
) -> CandidateResult:
    word = "cancelled" if status == TaskStatus.CANCELLED else f"failed: {error}"
    return CandidateResult(
        number=number,
        runner=runner,
        branch=C.task_branch(inp.run_id, C.candidate_name(inp.task.name, number)),
        status=status,
        commit=commit,
        attempts=attempts,
        usage=usage,
        finished_at=at,
        error=error,
        reason=word,
    )


def judge_input(inp: TaskInput, candidates: list[CandidateResult]) -> JudgeInput:
    """The candidates that passed, in the order they finished."""
    ready = [c for c in candidates if c.status == TaskStatus.SUCCEEDED]
    ready.sort(key=lambda c: (c.finished_at, c.number))
    return JudgeInput(
        repo=inp.paths.repo,
        run_id=inp.run_id,
        task=inp.task.name,
        base_commit=inp.base_commit,
        branch=C.task_branch(inp.run_id, inp.task.name),
        candidates=ready,
        judge=inp.task.judge,
        runner=inp.runners[inp.task.judge_runner] if inp.task.judge_runner else None,
        runner_name=inp.task.judge_runner,
        instructions=inp.task.judge_prompt,
        prompt=inp.task.prompt,
        plan_ref=inp.plan_ref,
        scratch=f"{inp.paths.run_folder(inp.run_id)}/.judge/{inp.task.name}",
        log_dir=inp.paths.log_dir,
    )


def totals(result: TaskResult, candidates: list[CandidateResult]) -> None:
    """Every candidate counts: its attempts (for the budget) and its usage."""
    result.candidates = sorted(candidates, key=lambda c: c.number)
    result.attempts = sum(c.attempts for c in candidates)
    result.attempt_usage = [c.usage for c in result.candidates]
    result.usage = sum((c.usage for c in candidates), Usage())


def crown(result: TaskResult, judged: JudgeOutput, outputs: dict[int, AgentOutput]) -> None:
    """The winner's work is the task's; each candidate says why it won or lost. A runner
    judge's usage counts in the task's (and so in the run's budget)."""
    for c in result.candidates:
        c.diff_lines = judged.diff_lines.get(c.number, c.diff_lines)
        c.reason = judged.reasons.get(c.number, c.reason)
        c.won = c.number == judged.winner
    result.succeeded_with(outputs[judged.winner])
    result.judge_usage = judged.usage
    result.usage = result.usage + judged.usage


def none_passed(result: TaskResult) -> str:
    return "no candidate passed: " + "; ".join(f"{c.number}: {c.error}" for c in result.candidates)
