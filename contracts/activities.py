"""Inputs and outputs of the repo-bound activities (one model each way)."""

from pydantic import BaseModel, Field

from magsag.contracts.constants import task_branch
from magsag.contracts.delivery import Notification, NotifyTarget, PullRequestSpec
from magsag.contracts.plan import RunnerSpec
from magsag.contracts.run import CandidateResult, RunResult, Usage


class PrepareIntegrationInput(BaseModel):
    repo: str
    base: str = Field(description="branch, tag or commit the run starts from")
    base_branch: str | None = Field(
        default=None, description="the base's branch: what a URL run's host fetches"
    )
    branch: str = Field(description="integration branch to create, e.g. magsag/<run>/integration")
    log_dir: str | None = Field(default=None, description="where run.jsonl is appended")


class PrepareIntegrationOutput(BaseModel):
    tip: str = Field(description="commit SHA the integration branch points at")
    created: bool


class CreateWorktreeInput(BaseModel):
    repo: str
    path: str
    branch: str
    base_commit: str


class CreateWorktreeOutput(BaseModel):
    path: str
    branch: str
    base_commit: str
    reused: bool
    new_branch: bool = Field(
        default=False, description="the branch was made here, at base_commit: no earlier work"
    )


class CloseWorktreeInput(BaseModel):
    """Commit what the worktree holds, then remove the worktree.

    mode "checkpoint" makes the task's checkpoint commit; mode "wip" saves partial
    work of a failed or cancelled task. Both commits carry the run and task trailers.
    """

    repo: str
    path: str
    branch: str
    run_id: str
    task: str
    mode: str = Field(pattern="^(checkpoint|wip)$")
    message: str
    log_dir: str | None = None
    base_commit: str | None = Field(
        default=None,
        description="the task's base: commits the agent made on top of it are its work too",
    )
    park: bool = Field(
        default=False,
        description="park the worktree for the run's next task instead of removing it",
    )
    merge_parent: str | None = Field(
        default=None,
        description="the other side of the merge the worktree holds: one more parent",
    )

    @classmethod
    def for_task(
        cls,
        repo: str,
        worktree: str,
        run_id: str,
        task: str,
        mode: str,
        message: str = "",
        log_dir: str | None = None,
        base_commit: str | None = None,
        park: bool = False,
    ) -> "CloseWorktreeInput":
        """Close the worktree of a task on its own branch magsag/<run>/tasks/<task>."""
        return cls(
            repo=repo,
            path=worktree,
            branch=task_branch(run_id, task),
            run_id=run_id,
            task=task,
            mode=mode,
            message=message or f"magsag: {task}",
            log_dir=log_dir,
            base_commit=base_commit,
            park=park,
        )


class CloseWorktreeOutput(BaseModel):
    commit: str | None = Field(
        description="the commit made or recognised, None when nothing changed"
    )
    changed_files: list[str] = []
    removed: bool


class IntegrateItem(BaseModel):
    task: str
    commit: str


class IntegrateInput(BaseModel):
    repo: str
    branch: str
    run_id: str
    items: list[IntegrateItem] = Field(description="merged one after another, in this order")
    log_dir: str | None = None


class IntegrateOutcome(BaseModel):
    task: str
    merged: bool
    conflict_files: list[str] = []


class IntegrateOutput(BaseModel):
    tip: str
    outcomes: list[IntegrateOutcome]
    checked_out_in: str | None = Field(
        default=None,
        description="the worktree that has the branch checked out; nothing was merged",
    )


class AgentInput(BaseModel):
    """One attempt of a task, from worktree to checkpoint.

    The attempt creates (or reuses) the worktree, resets it to base_commit, runs the
    agent and the Definition of Done, then makes the checkpoint commit and removes the
    worktree: one activity, so the task's critical path is one round trip.
    """

    run_id: str
    task: str = Field(description="the task, or a best-of-N candidate (<task>--candidate-<n>)")
    attempt: int = Field(description="the task's attempt, 1-based; MAGSAG_ATTEMPT")
    candidate: int | None = Field(default=None, description="best-of-N: MAGSAG_CANDIDATE")
    plan_task: str | None = Field(
        default=None, description="a candidate's task in the plan: its prompt and MAGSAG_TASK"
    )
    prompt: str = Field(description="empty when plan_ref names where it is stored")
    plan_ref: str | None = Field(default=None, description="see RunInput.plan_ref")
    feedback: str | None = Field(
        default=None, description="what failed the previous attempt's Definition of Done"
    )
    resume_session: str | None = Field(
        default=None,
        description="the agent's session this run continues (after a rate limit, or a retry "
        "with `retry: continue`): the worktree keeps its work, the prompt is a short "
        "'continue' (with the feedback, if any) instead of the task's prompt",
    )
    runner: RunnerSpec
    repo: str
    branch: str
    worktree: str
    base_commit: str
    log_dir: str
    timeout_seconds: float
    checks: list[str] = []
    outputs: list[str] = []


class AgentOutput(BaseModel):
    attempt: int
    log_path: str
    duration_seconds: float
    commit: str | None = Field(description="the checkpoint, None when nothing changed")
    changed_files: list[str] = []
    usage: Usage = Field(default_factory=Usage)
    host: str | None = Field(default=None, description="the host whose worker ran it")
    session_id: str | None = Field(
        default=None, description="the agent's session (claude session_id, codex thread_id)"
    )
    session_lost: str | None = Field(
        default=None,
        description="the session it was to continue was not found (why): it ran afresh",
    )


class RunEndRecord(BaseModel):
    log_dir: str
    repo: str | None = Field(default=None, description="where the run's worktrees are parked")
    run_folder: str | None = Field(
        default=None, description="<worktree root>/<run>: its parked worktrees are removed"
    )
    result: RunResult = Field(description="without the tasks its execution's input packs")
    statuses: dict[str, str] = Field(
        default_factory=dict, description="every task's: written since results are trimmed"
    )


class AwaitTaskInput(BaseModel):
    """A task workflow started by an earlier execution of the run (continue-as-new)."""

    task: str
    workflow_id: str


class ResolveInput(BaseModel):
    """One attempt of a resolver on a task's merge conflict (activities/resolve.py).

    `agent` is the attempt as the agent code runs it: its worktree and branch are the
    resolution's (magsag/<run>/tasks/<task>--resolve), its base_commit the integration
    tip the conflict is with, its prompt built by the activity, its checks the task's."""

    agent: AgentInput
    commit: str = Field(description="the task's side: its checkpoint, or an earlier resolution")
    instructions: str = Field(default="", description="the plan's on_conflict prompt")
    prompts: dict[str, str] = Field(
        default_factory=dict,
        description="every task's prompt, for a run without a stored plan (agent.plan_ref)",
    )

    def closing(self, mode: str) -> CloseWorktreeInput:
        """Save the resolver's worktree on its branch: a merge of both sides."""
        agent = self.agent
        return CloseWorktreeInput(
            repo=agent.repo,
            path=agent.worktree,
            branch=agent.branch,
            run_id=agent.run_id,
            task=agent.task,
            mode=mode,
            message=f"magsag: resolve the conflict of {agent.task}",
            log_dir=agent.log_dir,
            base_commit=agent.base_commit,
            merge_parent=self.commit,
        )


class ResolveOutput(AgentOutput):
    """commit: the merge of the integration tip and the task's side, resolved."""

    conflict_files: list[str] = Field(default_factory=list)
    sides: list[str] = Field(
        default_factory=list, description="tasks whose prompts the resolver got as the other side"
    )


class DeliverInput(BaseModel):
    """The run's pull request: push its integration branch, open or update the PR."""

    result: RunResult = Field(description="without the tasks its execution's input packs")
    pull_request: PullRequestSpec
    remote: str = "origin"


class NotifyInput(BaseModel):
    """One notification to one target (a failing target never fails the run)."""

    target: NotifyTarget
    notification: Notification
    log_dir: str | None = Field(default=None, description="where failures are recorded")


class JudgeInput(BaseModel):
    """Pick a best-of-N task's winner among its candidates that passed, and point the
    task's own branch at the winner's commit."""

    repo: str
    run_id: str
    task: str
    base_commit: str
    branch: str = Field(description="the task's own branch, set to the winner's commit")
    candidates: list[CandidateResult] = Field(description="those that passed, finish order")
    judge: str | None = Field(default=None, description="the plan's judge command")
    runner: RunnerSpec | None = Field(default=None, description="or the judge runner's spec")
    runner_name: str | None = None
    instructions: str = Field(default="", description="the runner judge's prompt from the plan")
    prompt: str = ""
    plan_ref: str | None = None
    scratch: str = Field(description="a folder for the judge's checkouts of the candidates")
    log_dir: str


class JudgeOutput(BaseModel):
    winner: int
    diff_lines: dict[int, int] = Field(description="per candidate number")
    reasons: dict[int, str] = Field(description="why each won or lost")
    usage: Usage = Field(default_factory=Usage, description="a runner judge's")
