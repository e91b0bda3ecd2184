"""The whole plan, prompts included, stored once in the run's repository.

Prompts never travel in workflow inputs, memos or histories (Temporal refuses payloads
over 2 MB, and every byte of history is kept): `magsag run` writes the normalized plan
as a git blob under refs/magsag/plans/<id>, where <id> is the blob's own hash, so the
same plan is stored once however often it runs; workflows carry that id and the DAG;
the agent activity reads its task's prompt from the blob, on whichever worker runs it.
"""

import json
import subprocess
from pathlib import Path

from magsag.activities import clones
from magsag.activities.git import environment, git
from magsag.contracts.plan import Plan

PLANS_REF = "refs/magsag/plans/"
# Prompts of the plans read lately, by blob id (content-addressed: never stale).
_PROMPTS: dict[str, dict[str, str]] = {}
_KEEP = 4


def store(repo: Path, plan: Plan) -> str:
    """Write the plan into the repository; returns its id. Run by the CLI, once the
    run's inputs are checked and just before the run starts."""

    def run(*args: str, data: bytes | None = None) -> str:
        done = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True)
        return done.stdout.decode().strip()

    blob = run("hash-object", "-w", "--stdin", data=plan.model_dump_json().encode())
    # A ref keeps the blob from `git gc` for as long as the run may be resumed.
    run("update-ref", "-m", "magsag: plan", f"{PLANS_REF}{blob}", blob)
    return blob


def store_on_remote(url: str, plan: Plan, state_dir: Path) -> str:
    """Write the plan into this host's clone of the remote and push it there, where
    every worker finds it; returns its id. A remote that refuses the push fails here,
    before the run starts."""
    clone = clones.make(url, state_dir)
    blob = store(clone, plan)
    ref = f"{PLANS_REF}{blob}"
    subprocess.run(["git", "push", "--quiet", clones.REMOTE, f"{ref}:{ref}"], cwd=clone,
                   env=environment(), capture_output=True, check=True)  # fmt: skip
    return blob


async def prompt_of(repo: str, plan_ref: str, task: str) -> str:
    """The task's prompt, from the stored plan."""
    prompts = _PROMPTS.get(plan_ref)
    if prompts is None:
        shown = await git("cat-file", "blob", plan_ref, cwd=repo)
        prompts = {t["name"]: t["prompt"] for t in json.loads(shown.stdout)["tasks"]}
        if len(_PROMPTS) >= _KEEP:
            _PROMPTS.pop(next(iter(_PROMPTS)))
        _PROMPTS[plan_ref] = prompts
    return prompts[task]
