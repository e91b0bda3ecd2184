"""The activities a worker runs: one list, registered by worker/assembly.py.

Kept out of the package's __init__ so that importing one helper of activities/ (the CLI
checks a runner spec) does not import every activity and what they need.
"""

from magsag.activities.adoption import await_task
from magsag.activities.agent import run_agent
from magsag.activities.candidates import judge_candidates
from magsag.activities.integration import integrate, prepare_integration
from magsag.activities.notify import notify
from magsag.activities.pull_request import open_pull_request
from magsag.activities.resolve import resolve_conflict
from magsag.activities.run_log import record_run_end
from magsag.activities.worktree import close_worktree

ALL_ACTIVITIES = [
    prepare_integration,
    run_agent,
    close_worktree,
    integrate,
    record_run_end,
    await_task,
    resolve_conflict,
    open_pull_request,
    notify,
    judge_candidates,
]
