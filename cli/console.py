"""Output helpers: messages on stderr, results on stdout, one line per user error."""

import json
import sys

import typer
from rich.console import Console

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def info(message: str) -> None:
    err_console.print(message, markup=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line for the user and return the Exit to raise."""
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
