"""Where magsag keeps its state on this machine: a light module, read by every command
before it imports anything heavy (cli/warm.py finds the warm process by it)."""

import os
from pathlib import Path


def state_dir() -> Path:
    """$MAGSAG_STATE_DIR, else $XDG_STATE_HOME/magsag, else ~/.local/state/magsag."""
    explicit = os.environ.get("MAGSAG_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return (Path(xdg).expanduser() / "magsag").resolve()
