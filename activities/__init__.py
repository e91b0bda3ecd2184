"""Every side effect of a run: worktrees, agents, checkpoint commits, integration."""

from magsag.activities.agent import run_agent
from magsag.activities.integration import integrate, prepare_integration
from magsag.activities.worktree import close_worktree, create_worktree

ALL_ACTIVITIES = [prepare_integration, create_worktree, run_agent, close_worktree, integrate]
