"""The activities as workflows call them: typed references, implemented in activities/.

A workflow calls `workflow.execute_activity(stubs.integrate, IntegrateInput(...))` and
gets an IntegrateOutput back, with no name strings or result types to keep in step; the
worker registers the implementation of the same name (activities.ALL_ACTIVITIES).
Workflow code never imports activities/ itself (git, subprocesses), only these stubs.
tests/contracts/test_activity_stubs.py checks each stub against its implementation.
"""

from temporalio import activity

from magsag.contracts.activities import (
    AgentInput,
    AgentOutput,
    AwaitTaskInput,
    CloseWorktreeInput,
    CloseWorktreeOutput,
    DeliverInput,
    IntegrateInput,
    IntegrateOutput,
    JudgeInput,
    JudgeOutput,
    NotifyInput,
    PrepareIntegrationInput,
    PrepareIntegrationOutput,
    ResolveInput,
    ResolveOutput,
    RunEndRecord,
)
from magsag.contracts.delivery import PullRequestOutcome
from magsag.contracts.run import TaskResult


def _elsewhere(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} runs on a worker: see magsag.activities")


@activity.defn(name="prepare_integration")
async def prepare_integration(inp: PrepareIntegrationInput) -> PrepareIntegrationOutput:
    """Create the run's integration branch at the base (keep it when it exists)."""
    raise _elsewhere("prepare_integration")


@activity.defn(name="integrate")
async def integrate(inp: IntegrateInput) -> IntegrateOutput:
    """Merge a batch of task commits into the integration branch, in order."""
    raise _elsewhere("integrate")


@activity.defn(name="run_agent")
async def run_agent(inp: AgentInput) -> AgentOutput:
    """One attempt of a task: worktree, agent, checks, checkpoint commit, removal."""
    raise _elsewhere("run_agent")


@activity.defn(name="close_worktree")
async def close_worktree(inp: CloseWorktreeInput) -> CloseWorktreeOutput:
    """Commit what a worktree holds (checkpoint or WIP) and remove it."""
    raise _elsewhere("close_worktree")


@activity.defn(name="record_run_end")
async def record_run_end(inp: RunEndRecord) -> None:
    """Append the run's end to run.jsonl."""
    raise _elsewhere("record_run_end")


@activity.defn(name="await_task")
async def await_task(inp: AwaitTaskInput) -> TaskResult:
    """Wait for a task workflow an earlier execution of the run started."""
    raise _elsewhere("await_task")


@activity.defn(name="resolve_conflict")
async def resolve_conflict(inp: ResolveInput) -> ResolveOutput:
    """One attempt of a resolver on a task's merge conflict: a resolved merge commit."""
    raise _elsewhere("resolve_conflict")


@activity.defn(name="open_pull_request")
async def open_pull_request(inp: DeliverInput) -> PullRequestOutcome:
    """Push the run's integration branch and open or update its pull request."""
    raise _elsewhere("open_pull_request")


@activity.defn(name="notify")
async def notify(inp: NotifyInput) -> None:
    """Send one notification to one target (a URL or a command)."""
    raise _elsewhere("notify")


@activity.defn(name="judge_candidates")
async def judge_candidates(inp: JudgeInput) -> JudgeOutput:
    """Pick a best-of-N task's winner; point the task's branch at its commit."""
    raise _elsewhere("judge_candidates")
