"""The `runs describe` view of a run, as --json prints it: the plan, each task's
attempts, waits, WIP save and merge, a timeline per task, and the measured critical path.
Built by history/describe.py."""

from datetime import datetime

from pydantic import BaseModel, Field

from magsag.contracts.run import CandidateResult, RunStatus, TaskStatus, Usage


class AttemptView(BaseModel):
    """One run_agent activity: an attempt of the task (a rate-limited one runs again
    under the same number)."""

    attempt: int
    outcome: str = Field(
        description="succeeded, failed, rate_limited, timed_out, cancelled, running, scheduled"
    )
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    worker: str | None = None
    infrastructure_retries: int = Field(0, description="re-runs after a lost worker")
    last_infrastructure_error: str | None = None
    error_type: str | None = None
    error: str | None = None
    log_path: str | None = None
    commit: str | None = Field(None, description="the checkpoint commit")
    changed_files: list[str] = Field(default_factory=list)
    usage: Usage | None = None
    candidate: int | None = Field(None, description="best-of-N: whose attempt")
    session_id: str | None = Field(None, description="the agent's session it reported")
    resumed_session: str | None = Field(None, description="the session it continued")


class WaitView(BaseModel):
    kind: str = Field(description="backoff (before a retry) or rate_limit (until its reset)")
    started_at: datetime
    seconds: float
    ended_at: datetime | None = Field(None, description="fired, or cancelled with its task")


class WipView(BaseModel):
    """close_worktree of a failed or cancelled task: partial work saved, worktree gone."""

    at: datetime | None
    outcome: str
    commit: str | None = None
    changed_files: list[str] = Field(default_factory=list)
    worktree_removed: bool = False


class IntegrationView(BaseModel):
    """One integrate activity: a batch of task commits merged in order."""

    scheduled_at: datetime
    at: datetime | None = Field(None, description="when the merge finished")
    tasks: list[str]
    tip: str | None = None
    merged: list[str] = Field(default_factory=list)
    conflicts: dict[str, list[str]] = Field(default_factory=dict)
    outcome: str | None = None


class Entry(BaseModel):
    at: datetime
    offset_seconds: float = Field(description="since the run started")
    event: str
    text: str


class TaskView(BaseModel):
    name: str
    status: TaskStatus
    depends_on: list[str]
    runner: str
    critical: bool
    carried: bool = Field(False, description="kept from the resumed run; did not run here")
    commit: str | None = None
    error: str | None = None
    conflict_files: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    ready_at: datetime | None = Field(None, description="when its dependencies were merged")
    started_at: datetime | None = Field(None, description="its task workflow started")
    finished_at: datetime | None = Field(None, description="its task workflow closed")
    done_at: datetime | None = Field(None, description="merged, or finished unmerged")
    detailed: bool = Field(
        False,
        description="attempts, waits and WIP read from its own history: for every task of a "
        "run of up to 20, else for those asked for (--task) and the critical path's",
    )
    attempts: list[AttemptView] = Field(default_factory=list)
    candidates: list[CandidateResult] = Field(
        default_factory=list, description="best-of-N: every candidate, why it won or lost"
    )
    judge_runner: str | None = Field(None, description="best-of-N: the runner that judged")
    judge_usage: Usage = Field(default_factory=Usage, description="that judge's, in usage")
    waits: list[WaitView] = Field(default_factory=list)
    wip: WipView | None = None
    resolves: list[AttemptView] = Field(
        default_factory=list, description="resolver attempts on its merge conflict (on_conflict)"
    )
    resolve_wip: WipView | None = Field(None, description="the resolvers' partial work saved")
    integration: IntegrationView | None = Field(None, description="the batch that merged it")
    timeline: list[Entry] = Field(default_factory=list)


class PathStep(BaseModel):
    task: str
    status: TaskStatus
    in_progress: bool = Field(description="still running or merging: its times end now")
    ready_at: datetime
    started_at: datetime
    finished_at: datetime
    done_at: datetime
    waiting_seconds: float = Field(description="ready, waiting for a slot or an approval")
    running_seconds: float = Field(description="its task workflow, start to close")
    agent_seconds: float
    retry_wait_seconds: float
    overhead_seconds: float = Field(description="the rest of running: orchestration")
    merging_seconds: float = Field(description="closed until merged")


class CriticalPath(BaseModel):
    """The dependency chain whose finish times set the run's end."""

    tasks: list[str] = Field(default_factory=list)
    steps: list[PathStep] = Field(default_factory=list)
    seconds: float = 0.0
    time: dict[str, float] = Field(
        default_factory=dict,
        description="setup, waiting, agents, retry_waits, orchestration, merging, finishing",
    )


class RunView(BaseModel):
    run_id: str
    plan: dict
    repo: str
    base: str
    status: RunStatus
    execution_status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    integration_branch: str
    integration_commit: str | None
    resumed_from: str | None
    usage: Usage
    gates: dict
    tasks: dict[str, TaskView]
    integrations: list[IntegrationView]
    critical_path: CriticalPath
