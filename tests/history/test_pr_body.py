"""A pull request's body tells the run: tasks, conflicts, failures, totals, links."""

from datetime import UTC, datetime

from magsag.contracts.run import RunResult, RunStatus, TaskResult, TaskStatus, Usage
from magsag.history.pr_body import MAX_BODY, pr_body, pr_title
from tests.support.runs import bash_plan, migration_tasks

GITHUB_LIMIT = 65_536


def _result(plan, tasks: dict[str, TaskResult], **fields) -> RunResult:
    return RunResult(
        run_id="r-1",
        plan=plan.name,
        status=RunStatus.FAILED,
        repo="/repo",
        base="main",
        integration_branch="magsag/r-1/integration",
        integration_commit="abcdef0123456789",
        tasks=tasks,
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        **fields,
    )


def test_the_body_has_every_task_the_conflicts_failures_totals_and_link():
    plan = bash_plan(
        [
            {"name": "api", "prompt": "x", "checks": ["true", "test -f a"]},
            {"name": "ui", "prompt": "x"},
            {"name": "db", "prompt": "x", "checks": ["false"], "retries": 1},
            {"name": "docs", "prompt": "x", "depends_on": ["db"]},
            {"name": "cli", "prompt": "x"},
        ]
    )
    tasks = {
        "api": TaskResult(
            name="api", status=TaskStatus.SUCCEEDED, attempts=1, commit="1111111111aaaa",
            changed_files=["a.py", "b.py"], usage=Usage(cost_usd=0.25, output_tokens=10),
        ),
        "ui": TaskResult(
            name="ui", status=TaskStatus.CONFLICTED, attempts=1, commit="2222222222bbbb",
            conflict_files=["README.md"], error="merge conflict in README.md",
        ),
        "db": TaskResult(
            name="db", status=TaskStatus.FAILED, attempts=2, error="check failed: false\nexit 1"
        ),
        "docs": TaskResult(name="docs", status=TaskStatus.SKIPPED),
        "cli": TaskResult(
            name="cli", status=TaskStatus.SUCCEEDED, attempts=1, commit="3333333333cccc",
            conflict_files=["src/cli.py"], resolved_conflict=True,
            resolve_usage=Usage(cost_usd=0.125),
        ),
    }  # fmt: skip
    result = _result(plan, tasks, usage=Usage(cost_usd=1.5, input_tokens=1000, output_tokens=20))
    body = pr_body(result, plan, "http://localhost:8233/namespaces/default/workflows/magsag-r-1")

    assert "## magsag run `r-1` of plan `test`" in body
    assert "| `api` | ✅ succeeded | 1 | 2/2 | $0.2500 | `1111111111` | 2 |" in body
    assert "| `ui` | ⚠️ conflicted | 1 | — | $0.0000 | `2222222222` | — |" in body
    assert "| `db` | ❌ failed | 2 | — |" in body
    assert "- `ui` conflicted with the integration branch in `README.md`" in body
    assert "- `cli` conflicted in `src/cli.py`; a resolver merged both sides ($0.1250)" in body
    assert "- `db` failed after 2 attempts: check failed: false exit 1" in body
    assert "- `docs` skipped: a task it depends on did not succeed" in body
    assert "$1.5000" in body and "1,000 in, 20 out" in body
    assert "http://localhost:8233/namespaces/default/workflows/magsag-r-1" in body
    assert pr_title(result) == "magsag: test (r-1)"
    assert pr_title(result, "Add the API") == "Add the API"


def test_the_body_of_a_10000_task_run_stays_under_githubs_limit():
    tasks = migration_tasks(10_000)
    plan = bash_plan(tasks)
    failing = "the agent said: " + "x" * 2000
    results = {
        t["name"]: TaskResult(
            name=t["name"],
            status=TaskStatus.FAILED if i % 2 else TaskStatus.SUCCEEDED,
            attempts=3,
            commit="c" * 40,
            changed_files=[f"f{n}" for n in range(50)],
            error=failing if i % 2 else None,
        )
        for i, t in enumerate(tasks)
    }
    body = pr_body(_result(plan, results), plan, "http://ui/x")
    assert len(body) < min(MAX_BODY, GITHUB_LIMIT)
    assert "… and 9850 more tasks (4925 failed, 4925 succeeded)" in body
    assert "- … and 4960 more: `magsag status r-1 --json` lists them all" in body
