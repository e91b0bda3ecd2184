"""Inputs and results of the plan workflow (MAG) and the task workflow (SAG)."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from magsag.contracts.constants import CONTINUE_AS_NEW_AFTER, integration_branch
from magsag.contracts.delivery import PullRequestOutcome
from magsag.contracts.plan import Plan, PlanTask, RunnerSpec

if TYPE_CHECKING:  # contracts/activities.py imports this module
    from magsag.contracts.activities import AgentOutput


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"


class Usage(BaseModel):
    """Tokens and cost of agent work; cost_estimated when magsag priced the tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cost_estimated: bool = False

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            cost_estimated=self.cost_estimated or other.cost_estimated,
        )


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CONFLICTED = "conflicted"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


FINISHED_TASK_STATUSES = frozenset(TaskStatus) - {TaskStatus.PENDING, TaskStatus.RUNNING}
# Ended without their work merged, by their own doing: what "failed" counts.
FAILED_TASK_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.CONFLICTED})


class GateStatus(StrEnum):
    NOT_REACHED = "not_reached"
    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"


class Gate(BaseModel):
    """An approval a phase or task waits for; who decided and when is kept."""

    id: str = Field(description='"phase:<name>" or "task:<name>"')
    status: GateStatus = GateStatus.NOT_REACHED
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None


class GateDecision(BaseModel):
    """`magsag approve` / `reject`: which gate (none named: the one waiting), by whom."""

    phase: str | None = None
    task: str | None = None
    by: str | None = None
    reason: str | None = None

    def gate_id(self) -> str | None:
        if self.phase:
            return f"phase:{self.phase}"
        if self.task:
            return f"task:{self.task}"
        return None


class RunPaths(BaseModel):
    """Where a run's files live on the host that holds the repository."""

    repo: str
    worktree_root: str
    log_dir: str = Field(description="<state>/runs/<run-id>: per-task logs")

    def run_folder(self, run_id: str) -> str:
        """Where the run's task worktrees are made: <worktree root>/<run>/<task>."""
        return f"{self.worktree_root}/{run_id}"

    def worktree(self, run_id: str, task: str) -> str:
        return f"{self.run_folder(run_id)}/{task}"


class AgentSession(BaseModel):
    """An agent session a run of an attempt reported (not a secret: it names a transcript
    on the worker's machine)."""

    attempt: int
    session_id: str
    resumed: bool = Field(default=False, description="the run continued this session")
    lost: str | None = Field(
        default=None,
        description="the session the run was to continue was not found (why); it ran "
        "afresh with the task's prompt in the kept worktree, and reported this one",
    )
    candidate: int | None = Field(default=None, description="best-of-N: whose session")


class CandidateResult(BaseModel):
    """One best-of-N candidate: what it did, and why it won or lost."""

    number: int = Field(description="1..N, its MAGSAG_CANDIDATE")
    runner: str
    branch: str = Field(description="where its work is kept, won or lost")
    status: TaskStatus = Field(description="succeeded: its agent, checks and outputs passed")
    commit: str | None = Field(default=None, description="its checkpoint (or WIP) commit")
    changed_files: list[str] = Field(default_factory=list)
    diff_lines: int | None = Field(default=None, description="lines added and removed")
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    finished_at: datetime | None = None
    error: str | None = None
    won: bool = False
    reason: str = Field(default="", description="why it won or lost")


class TaskResult(BaseModel):
    name: str
    status: TaskStatus = TaskStatus.PENDING
    commit: str | None = None
    changed_files: list[str] = Field(default_factory=list)
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    conflict_files: list[str] = Field(default_factory=list)
    log_path: str | None = None
    host: str | None = Field(default=None, description="whose worker made its checkpoint")
    usage: Usage = Field(default_factory=Usage, description="all attempts together")
    attempt_usage: list[Usage] = Field(default_factory=list, description="one per attempt")
    sessions: list[AgentSession] = Field(
        default_factory=list, description="the agent's sessions, one per run of an attempt"
    )
    candidates: list[CandidateResult] = Field(
        default_factory=list, description="best-of-N: every candidate, the winner marked"
    )
    stale: bool = Field(
        default=False, description="running, but its agent printed nothing for a while (CLI)"
    )
    resolving: bool = Field(
        default=False, description="running: a resolver works on its merge conflict"
    )
    resolved_conflict: bool = Field(
        default=False, description="merged after a resolver resolved its conflict_files"
    )
    resolve_usage: Usage = Field(
        default_factory=Usage, description="the resolver's, also counted in usage"
    )
    judge_usage: Usage = Field(
        default_factory=Usage, description="best-of-N: a runner judge's, also counted in usage"
    )

    def succeeded_with(self, work: "AgentOutput") -> None:
        """The task succeeded with this attempt's (or winning candidate's) work."""
        self.status = TaskStatus.SUCCEEDED
        self.commit = work.commit
        self.changed_files = work.changed_files
        self.log_path = work.log_path
        self.host = work.host


class TaskRows(BaseModel):
    """Task results packed as rows (contracts/task_rows.py), times counted from epoch."""

    epoch: datetime
    rows: dict[str, list] = Field(default_factory=dict)


class Handover(BaseModel):
    """What a run's next execution starts from when it continues as new: the run's
    totals, and its tasks packed as rows, so the input stays small at 10,000 tasks."""

    execution: int = Field(description="how many executions of the run came before")
    started_at: datetime
    integration_commit: str | None
    usage: Usage
    attempts: int = Field(description="of the tasks this run ran: for max_attempts")
    gates: dict[str, Gate] = Field(default_factory=dict)
    done: TaskRows = Field(
        description="tasks that ended in an earlier execution; since ended and "
        "earlier_runs, only those a run handed over before them"
    )
    running: TaskRows = Field(description="tasks still running: the next execution waits")
    ended: str = Field(
        default="",
        description="the statuses of the tasks that ended in an earlier execution, in plan "
        "order, packed (contracts/task_rows.py pack_statuses); their details are in the "
        "memos of the executions they ended in",
    )
    earlier_runs: list[str] = Field(
        default_factory=list,
        description="run ids of the executions before this one, first to last, whose memos "
        "hold the details of the tasks that ended in them",
    )


class RunInput(BaseModel):
    run_id: str
    plan: Plan
    base: str = Field(description="branch the run starts from; never written")
    base_commit: str = Field(description="the base's commit when the run was started")
    paths: RunPaths
    host_queue: str
    concurrency: int
    resumed_from: str | None = Field(default=None, description="run id this run resumes")
    plan_ref: str | None = Field(
        default=None,
        description="git blob in the repository with the whole plan, prompts included; "
        "when set, `plan` carries the tasks without their prompts",
    )
    carried: dict[str, TaskResult] = Field(
        default_factory=dict,
        description="results kept from the resumed run; these tasks do not run again "
        "(runs started before carried_rows)",
    )
    carried_rows: TaskRows | None = Field(
        default=None, description="as carried, packed (resume writes this)"
    )
    continue_after: int = Field(
        default=CONTINUE_AS_NEW_AFTER,
        description="tasks an execution starts before the run continues as new",
    )
    handover: Handover | None = Field(
        default=None, description="set when the run continued as new: where it stands"
    )
    web_ui: str | None = Field(
        default=None, description="the run in the Temporal Web UI (pull request, notifications)"
    )

    def carried_names(self) -> set[str]:
        """Tasks kept from the resumed run: they do not run in this one."""
        return set(self.carried) | set(self.carried_rows.rows if self.carried_rows else ())

    def ended_before(self) -> set[str]:
        """Tasks kept from the resumed run or ended in an earlier execution: this
        execution's result leaves them out (status puts them back)."""
        from magsag.contracts.task_rows import unpack_statuses  # it imports this module

        ended = self.carried_names()
        if self.handover is not None:
            ended |= set(self.handover.done.rows)
            ended |= set(unpack_statuses(self.handover.ended, [t.name for t in self.plan.tasks]))
        return ended


class TaskInput(BaseModel):
    run_id: str
    task: PlanTask
    runner: RunnerSpec
    runners: dict[str, RunnerSpec] = Field(
        default_factory=dict, description="best-of-N: the candidates' and judge's runners, by name"
    )
    base_commit: str = Field(description="integration tip when the task starts")
    paths: RunPaths
    host_queue: str
    plan_ref: str | None = Field(default=None, description="see RunInput.plan_ref")


class RunResult(BaseModel):
    run_id: str
    plan: str
    status: RunStatus = RunStatus.RUNNING
    repo: str
    base: str
    integration_branch: str
    integration_commit: str | None = None
    resumed_from: str | None = None
    resumed_as: list[str] = Field(
        default_factory=list, description="runs that resumed this one (filled in by status)"
    )
    started_at: datetime | None = None
    finished_at: datetime | None = None
    usage: Usage = Field(default_factory=Usage, description="all tasks together")
    gates: dict[str, Gate] = Field(default_factory=dict)
    tasks: dict[str, TaskResult]
    error: str | None = Field(
        default=None, description="why the run as a whole failed (e.g. its integration)"
    )
    waiting_on: str | None = Field(
        default=None, description="what the run waits for now, besides approvals"
    )
    pull_request: PullRequestOutcome | None = Field(
        default=None, description="the pull request its plan asked for, or why there is none"
    )

    def as_memo(self) -> dict:
        """The whole state as one memo value: the layout of runs started before
        RUN_MEMO (the workflow then rewrote it at every change). Lists of files stay
        out: the final result has them."""
        return self.model_dump(
            mode="json",
            exclude_none=True,
            exclude_defaults=True,
            exclude={"tasks": {"__all__": MEMO_EXCLUDED}},
        )

    def header_memo(self, counts: dict[str, int], execution: int = 0) -> dict:
        """The run without its tasks, plus their count by status: the RUN_MEMO value."""
        header = self.model_dump(
            mode="json", exclude_none=True, exclude_defaults=True, exclude={"tasks"}
        )
        return header | {"counts": counts, "execution": execution}

    @classmethod
    def initial(
        cls,
        inp: RunInput,
        started_at: datetime | None = None,
        ended: dict[str, "TaskResult"] | None = None,
    ) -> "RunResult":
        """The state of a run that has just started (every task pending, those carried
        from a resumed run aside), or of its next execution after continue-as-new.
        ended: what is known of tasks that ended in earlier executions (status reads it
        from their memos); the others have their packed status only."""
        from magsag.contracts.task_rows import (  # it imports this module
            unpack_all,
            unpack_statuses,
        )

        known = inp.carried | unpack_all(inp.carried_rows)
        result = cls(
            run_id=inp.run_id,
            plan=inp.plan.name,
            repo=inp.paths.repo,
            base=inp.base,
            integration_branch=integration_branch(inp.run_id),
            resumed_from=inp.resumed_from,
            started_at=started_at,
            tasks={},
            gates={t.gate: Gate(id=t.gate) for t in inp.plan.tasks if t.gate},
        )
        handover = inp.handover
        if handover is not None:
            names = [t.name for t in inp.plan.tasks]
            details = ended or {}
            known |= {
                name: details.get(name) or TaskResult(name=name, status=status)
                for name, status in unpack_statuses(handover.ended, names).items()
            }
            known |= unpack_all(handover.done) | unpack_all(handover.running)
            result.started_at = handover.started_at
            result.integration_commit = handover.integration_commit
            result.usage = handover.usage
            result.gates = handover.gates
        result.tasks = {
            t.name: known.get(t.name) or TaskResult(name=t.name) for t in inp.plan.tasks
        }
        return result


# What memos leave out of a task: lists that grow with the work (the result has them).
MEMO_EXCLUDED = {"changed_files", "log_path", "attempt_usage"}
# The memo of a run started since continue-as-new: RUN_MEMO holds the run without its
# tasks (header_memo); each task that changed in the current execution has its own key,
# TASK_MEMO_PREFIX + name, so an upsert carries only what changed. Tasks that ended in
# an earlier execution are in the execution's input (RunInput.handover).
RUN_MEMO = "magsag_run"
TASK_MEMO_PREFIX = "magsag_task:"
# The memo of runs started before: one key with the whole RunResult (as_memo).
STATUS_MEMO = "magsag_status"


def task_memo(task: TaskResult) -> dict:
    return task.model_dump(
        mode="json", exclude_none=True, exclude_defaults=True, exclude=MEMO_EXCLUDED
    )
