"""`magsag demo`: a throwaway repository, a three-phase plan, a real run."""

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
import yaml

from magsag.cli.console import info
from magsag.cli.launch import prepare_run, start_and_follow
from magsag.cli.runtime import web_ui_link
from magsag.contracts import constants as C
from magsag.worker import connection

DEMO_AGENT = Path(__file__).with_name("demo_agent.py")

SEED_FILES = {
    "README.md": "# calc\n\nA tiny codebase that magsag's demo agents extend.\n",
    "app/__init__.py": "",
    "tests/__init__.py": "",
}


def demo_plan() -> dict:
    unit_tests = "python3 -m unittest discover -s tests -t ."
    return {
        "name": "demo",
        "concurrency": 3,
        "runners": {"scripted": {"command": [sys.executable, str(DEMO_AGENT), "{prompt}"]}},
        "phases": [
            {
                "name": "build",
                "tasks": [
                    {"name": "greeting", "prompt": "Add app/greeting.py with greet(name)."},
                    {"name": "arithmetic", "prompt": "Add app/arithmetic.py with add(a, b)."},
                    {"name": "docs", "prompt": "Document the modules in docs/usage.md."},
                ],
            },
            {
                "name": "test",
                "tasks": [
                    {"name": "test-greeting", "prompt": "Test greet().", "checks": [unit_tests]},
                    {"name": "test-arithmetic", "prompt": "Test add().", "checks": [unit_tests]},
                ],
            },
            {
                "name": "release",
                "tasks": [
                    {
                        "name": "changelog",
                        "prompt": "Write CHANGELOG.md listing the modules.",
                        "outputs": ["CHANGELOG.md"],
                    }
                ],
            },
        ],
    }


def make_demo_repo(root: Path) -> Path:
    repo = root / "repo"
    for rel, content in SEED_FILES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(content)
    ident = ["-c", "user.name=magsag demo", "-c", "user.email=demo@magsag.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*ident, "commit", "-qm", "seed"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def demo() -> None:
    """Make a throwaway repository and run a three-phase plan on it with a scripted agent."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = connection.state_dir() / "demo" / stamp
    repo = make_demo_repo(root)
    plan_path = root / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(demo_plan(), sort_keys=False))
    info(f"demo repository: {repo}\ndemo plan: {plan_path}")
    run_input = prepare_run(plan_path, repo, None, None, None)
    code = asyncio.run(start_and_follow(run_input, detach=False, json_output=False))
    branch = C.integration_branch(run_input.run_id)
    info(f"\nintegration branch {branch}:")
    log = subprocess.run(
        ["git", "log", "--graph", "--oneline", "--decorate=no", branch],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    print(log.stdout, end="", flush=True)
    link = web_ui_link(run_input.run_id)
    if link:
        info(f"\nWeb UI: {link}")
    raise typer.Exit(code)
