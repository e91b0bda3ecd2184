"""Every side effect of a run: worktrees, agents, checkpoint commits, integration."""

from magsag.activities.agent import run_agent
from magsag.activities.integration import integrate, prepare_integration
from magsag.activities.run_log import record_run_end
from magsag.activities.worktree import close_worktree

ALL_ACTIVITIES = [prepare_integration, run_agent, close_worktree, integrate, record_run_end]
