"""What `magsag <command>` imports before it runs: that command's module, not every
command's, and no workflow code to start a run (each import is start-up time)."""

import json
import subprocess
import sys

import pytest

REGISTERED = """
import json, sys
from magsag.cli import app
app._register(["magsag", *sys.argv[1:]])
ours = ("magsag.cli.", "magsag.workflows")
print(json.dumps(sorted(name for name in sys.modules if name.startswith(ours))))
"""


def loaded(*argv: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", REGISTERED, *argv], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return set(json.loads(done.stdout))


def test_run_imports_neither_the_other_commands_nor_the_workflows():
    modules = loaded("run", "plan.yaml")
    assert "magsag.cli.run_cmd" in modules
    others = {"control_cmd", "gc_cmd", "demo_cmd", "pr_cmd", "logs_cmd", "runs_cmd", "plan_cmd"}
    assert not {f"magsag.cli.{name}" for name in others} & modules
    assert not any(name.startswith("magsag.workflows") for name in modules)


@pytest.mark.parametrize("first", ["--help", "bogus"])
def test_help_or_an_unknown_word_registers_every_command(first):
    modules = loaded(first)
    every = {"run_cmd", "control_cmd", "gc_cmd", "demo_cmd", "pr_cmd", "logs_cmd",
             "server_cmd", "runs_cmd", "plan_cmd"}  # fmt: skip
    assert {f"magsag.cli.{name}" for name in every} <= modules
