"""Output helpers: messages on stderr, results on stdout, one line per user error."""

import sys

import pydantic_core
import typer
from pydantic import BaseModel
from rich.console import Console

_ERR = {"stderr": True, "highlight": False}
_OUT = {"highlight": False}
err_console = Console(**_ERR)
out_console = Console(**_OUT)


def renew() -> None:
    """Consoles that look again at the terminal and environment, for a warm process's
    child that becomes a user's command (cli/warm_server.py): a Console decides on
    colours and the like when made. Made again in place, as modules hold them."""
    err_console.__init__(**_ERR)
    out_console.__init__(**_OUT)


def info(message: str) -> None:
    err_console.print(message, markup=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line for the user and return the Exit to raise."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(data) -> None:
    """data (a model, or plain values) as indented JSON on stdout, as json.dumps writes
    it, in a tenth of the time: a 10,000-task run's state is 12 MB of JSON."""
    if isinstance(data, BaseModel):
        text = data.model_dump_json(indent=2, ensure_ascii=True)
    else:
        text = pydantic_core.to_json(data, indent=2, ensure_ascii=True, fallback=str).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
