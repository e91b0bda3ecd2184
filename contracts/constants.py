"""Every name and number the parts of magsag agree on, in one place."""

from datetime import timedelta

# Task queues: a run's workflows and repo-bound activities go to the queue named after
# the host that holds its repository (DESIGN invariant 6), or, for a run on a remote URL,
# to the one every worker of the shared queue polls. The shared queue still runs the
# workflows of runs that earlier versions started there.
TASK_QUEUE = "magsag"
HOST_QUEUE_PREFIX = "magsag-host-"
ANY_HOST_SUFFIX = "-any-host"

# Workflow ids: the plan workflow is magsag-<run>, each task magsag-<run>/<task>.
WORKFLOW_ID_PREFIX = "magsag-"
# The plan workflow's type, by name: what the CLI starts and lists without importing the
# workflow's code (~25 ms of every `magsag run`).
PLAN_WORKFLOW = "PlanWorkflow"

# Git names.
BRANCH_PREFIX = "magsag"
TRAILER_RUN = "Magsag-Run"
TRAILER_TASK = "Magsag-Task"

# Defaults of a plan.
DEFAULT_CONCURRENCY = 4
# A run's plan workflow continues as new after starting this many tasks, so no one
# execution's history nears Temporal's limits (51,200 events, 50 MB): a task adds ~7
# events and a few KB. MAGSAG_CONTINUE_AS_NEW_AFTER sets it per run (small in tests).
CONTINUE_AS_NEW_AFTER = 1000
ENV_CONTINUE_AS_NEW_AFTER = "MAGSAG_CONTINUE_AS_NEW_AFTER"
# How long the next execution waits for a task an earlier one started: a bound far
# past any task's own timeouts and retries (rate-limit waits included).
ADOPTED_TASK_TIMEOUT = timedelta(days=30)
DEFAULT_TASK_TIMEOUT = timedelta(minutes=30)
DEFAULT_RETRIES = 0
MAX_CONCURRENCY = 64

# Activity timing. The agent activity heartbeats every HEARTBEAT_INTERVAL; a
# worker that dies is noticed after HEARTBEAT_TIMEOUT and the attempt retried.
# Cancellation reaches an activity only with a heartbeat the SDK actually sends, so
# the worker sends them at least every HEARTBEAT_THROTTLE (not 0.8 x the timeout).
HEARTBEAT_INTERVAL = timedelta(seconds=2)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
HEARTBEAT_THROTTLE = timedelta(seconds=2)
GIT_ACTIVITY_TIMEOUT = timedelta(minutes=5)
# A workflow's next step goes first to the worker that ran its last one (its sticky
# queue); when that worker is dead, the step waits this long before any worker may
# take it. Temporal's default of 10 s would add to every recovery from a crash.
STICKY_QUEUE_TIMEOUT = timedelta(seconds=3)
# Extra time Temporal allows past the agent's own timeout, which the activity
# enforces itself so it can kill the process group first.
AGENT_TIMEOUT_GRACE = timedelta(seconds=30)
# How long a best-of-N judge command may take.
JUDGE_TIMEOUT = timedelta(minutes=10)
RETRY_INITIAL_INTERVAL = timedelta(seconds=1)
RETRY_MAX_INTERVAL = timedelta(seconds=30)
# No activity retries forever: past this many attempts (about 15 s of backoff for a
# quick failure) the failure reaches the workflow, which ends the task or the run
# with its reason.
ACTIVITY_MAX_ATTEMPTS = 5
# Delivering a run (a push and a few gh calls) is tried this many times: a network
# blip is retried, a missing gh or login is not (the run stays succeeded either way).
DELIVERY_ATTEMPTS = 3
# A notification gets a few short attempts (each a POST or a command bounded by
# NOTIFY_REQUEST_TIMEOUT), then is dropped: it never holds up a run's end for long.
NOTIFY_ATTEMPTS = 3
NOTIFY_REQUEST_TIMEOUT = timedelta(seconds=10)
NOTIFY_ACTIVITY_TIMEOUT = timedelta(seconds=20)
# An integration branch checked out in a worktree is never moved under it: the run
# waits, checking again at most every CHECKED_OUT_POLL, and fails after CHECKED_OUT_WAIT.
CHECKED_OUT_POLL = timedelta(seconds=10)
CHECKED_OUT_WAIT = timedelta(minutes=10)

# Embedded Temporal dev server.
DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_UI_PORT = 8233
NAMESPACE_RETENTION = "720h"

# Custom search attributes (name, Temporal type) registered on the embedded server.
SEARCH_ATTRIBUTES = {
    "MagsagRepo": "Keyword",
    "MagsagPlan": "Keyword",
    "MagsagRunStatus": "Keyword",
    "MagsagResumedFrom": "Keyword",
    "MagsagWaiting": "Keyword",
    "MagsagTasksDone": "Int",
    "MagsagTasksFailed": "Int",
    "MagsagCostUsd": "Double",
}

# Environment variables set for every agent process.
ENV_RUN_ID = "MAGSAG_RUN_ID"
ENV_TASK = "MAGSAG_TASK"
ENV_ATTEMPT = "MAGSAG_ATTEMPT"
ENV_WORKTREE = "MAGSAG_WORKTREE"
ENV_PROMPT = "MAGSAG_PROMPT"
# Unique per execution of an attempt: every process that inherits it belongs to that
# attempt, even one that left the process group (setsid, double fork).
ENV_ATTEMPT_ID = "MAGSAG_ATTEMPT_ID"
# Best-of-N: which candidate an agent is (1..N); unset for a task of one agent.
ENV_CANDIDATE = "MAGSAG_CANDIDATE"


def host_queue(hostname: str) -> str:
    return f"{HOST_QUEUE_PREFIX}{hostname}"


def any_host_queue(task_queue: str) -> str:
    """The queue of runs on a remote URL, workflows and activities: every worker of the
    task queue polls it."""
    return f"{task_queue}{ANY_HOST_SUFFIX}"


def plan_workflow_id(run_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{run_id}"


def task_workflow_id(run_id: str, task: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{run_id}/{task}"


def run_and_task(workflow_id: str) -> tuple[str, str | None] | None:
    """(run, task) of a task workflow's id, (run, None) of a plan workflow's; None for a
    workflow that is not magsag's."""
    if not workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return None
    run, _, task = workflow_id.removeprefix(WORKFLOW_ID_PREFIX).partition("/")
    return run, task or None


def integration_branch(run_id: str) -> str:
    return f"{BRANCH_PREFIX}/{run_id}/integration"


def task_branch(run_id: str, task: str) -> str:
    return f"{BRANCH_PREFIX}/{run_id}/tasks/{task}"


# What the conflict resolution of a task goes by, beside the task: its branch
# magsag/<run>/tasks/<task>--resolve, its worktree and its log files.
RESOLVE_SUFFIX = "--resolve"


def resolve_name(task: str) -> str:
    return f"{task}{RESOLVE_SUFFIX}"


# What sets a best-of-N candidate apart from its task: its branch, worktree and log files
# are named <task>--candidate-<n>, beside the task's own (git cannot hold a branch
# tasks/<task> and one under it); plan task names may not contain it.
CANDIDATE_INFIX = "--candidate-"


def candidate_name(task: str, number: int) -> str:
    return f"{task}{CANDIDATE_INFIX}{number}"
