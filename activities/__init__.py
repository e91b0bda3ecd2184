"""Every side effect of a run: worktrees, agents, checkpoint commits, integration
(the list a worker registers is in registry.py)."""
