"""Arguments and options that several commands take, defined once."""

from pathlib import Path
from typing import Annotated, Any

import typer


def json_flag(text: str) -> Any:
    """--json, with what it prints."""
    return Annotated[bool, typer.Option("--json", help=text)]


JsonOpt = json_flag("Print the result as JSON on stdout.")
RunIdArg = Annotated[str, typer.Argument(help="Run id printed by `magsag run`.")]
PlanArg = Annotated[Path, typer.Argument(help="Plan file (YAML).", show_default=False)]

# Which approval `approve` and `reject` decide, and who decides.
PhaseOpt = Annotated[str | None, typer.Option(help="The phase whose approval to give.")]
GateTaskOpt = Annotated[str | None, typer.Option(help="The task whose approval to give.")]
ByOpt = Annotated[
    str | None,
    typer.Option(help="Who decides (default: your user name).", envvar="MAGSAG_USER"),
]
