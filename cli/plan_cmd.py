"""`magsag plan validate` and `magsag plan show`."""

from pathlib import Path

import typer

from magsag.cli import inputs
from magsag.cli.console import fail, out_console, print_json
from magsag.cli.options import PlanArg, json_flag
from magsag.cli.render import plan_layers
from magsag.contracts.durations import format_duration
from magsag.contracts.plan import Plan
from magsag.history.critical_path import worst_case_path

app = typer.Typer(help="Check and inspect plan files without running them.", no_args_is_help=True)

PlanJsonOpt = json_flag("Print the normalized plan as JSON.")


def _load_or_exit(path: Path) -> Plan:
    try:
        return inputs.check_plan(path)
    except inputs.InputError as err:
        raise fail(str(err)) from None


@app.command()
def validate(plan: PlanArg, json_output: PlanJsonOpt = False) -> None:
    """Check a plan: names, runners, dependencies, cycles, durations. Exit 2 if it is bad."""
    loaded = _load_or_exit(plan)
    if json_output:
        print_json(loaded.model_dump(mode="json"))
        return
    out_console.print(f"{plan}: ok, plan '{loaded.name}' with {len(loaded.tasks)} tasks")


@app.command()
def show(plan: PlanArg, json_output: PlanJsonOpt = False) -> None:
    """Show the plan as the DAG it compiles to: layers of tasks and the critical path."""
    loaded = _load_or_exit(plan)
    layers = plan_layers(loaded)
    chain, worst = worst_case_path(loaded)
    if json_output:
        print_json(
            {
                "plan": loaded.model_dump(mode="json"),
                "layers": layers,
                "critical_path": chain,
                "critical_path_timeout_seconds": worst,
            }
        )
        return
    out = out_console
    out.print(
        f"plan [bold]{loaded.name}[/]: {len(loaded.tasks)} tasks, concurrency {loaded.concurrency}"
    )
    for index, layer in enumerate(layers):
        out.print(f"\n[bold]layer {index}[/]")
        for name in layer:
            task = loaded.task(name)
            deps = f"  after {', '.join(task.depends_on)}" if task.depends_on else ""
            flags = "" if task.critical else "  (not critical)"
            out.print(
                f"  {name}  [dim]{task.runner}, {format_duration(task.timeout_seconds)}"
                f"{', retries ' + str(task.retries) if task.retries else ''}[/]{deps}{flags}",
                markup=True,
                highlight=False,
            )
    out.print(f"\ncritical path: {' -> '.join(chain)}  (at most {format_duration(worst)})")
