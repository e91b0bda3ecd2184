"""A run told as a pull request: title and Markdown body, from the run's result.

What a reviewer of twenty agents' work needs on one page: how the run ended, a row per
task (status, attempts, checks, cost, commit, files), the conflicts, what failed or was
skipped and why, the totals and where to look further. GitHub refuses a body over
65,536 characters: a big run's table and lists stop after a bounded number of rows and
say how many more there are and where to see them all.
"""

from collections import Counter

from magsag.contracts.plan import Plan
from magsag.contracts.run import FAILED_TASK_STATUSES, RunResult, TaskResult, TaskStatus

TABLE_ROWS = 150
LISTED = 40  # failed, skipped and conflicted tasks listed with their reasons
REASON_CHARS = 300
MAX_BODY = 60_000  # under GitHub's 65,536, whatever the names
MARKS = {
    TaskStatus.SUCCEEDED: "✅",
    TaskStatus.FAILED: "❌",
    TaskStatus.CONFLICTED: "⚠️",
    TaskStatus.SKIPPED: "⏭️",
    TaskStatus.CANCELLED: "⏹️",
    TaskStatus.RUNNING: "▶️",
    TaskStatus.PENDING: "·",
}


def pr_title(result: RunResult, title: str | None = None) -> str:
    return title or f"magsag: {result.plan} ({result.run_id})"


def pr_body(result: RunResult, plan: Plan, web_ui: str | None = None) -> str:
    counts = Counter(task.status for task in result.tasks.values())
    tally = ", ".join(f"{n} {status.value}" for status, n in sorted(counts.items()))
    usage = result.usage
    tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    estimated = " (estimated)" if usage.cost_estimated else ""
    lines = [
        f"## magsag run `{result.run_id}` of plan `{result.plan}`",
        "",
        f"**{result.status.value}** · {len(result.tasks)} tasks: {tally}",
        "",
        f"- Base: `{result.base}`; integration branch `{result.integration_branch}` "
        f"at `{(result.integration_commit or '')[:10]}`",
        f"- Cost: ${usage.cost_usd:.4f}{estimated}; tokens: {tokens:,} in, "
        f"{usage.output_tokens:,} out",
    ]
    if web_ui:
        lines.append(f"- Temporal Web UI: {web_ui}")
    if result.error:
        lines.append(f"- Error: {_cell(result.error, REASON_CHARS)}")
    lines += ["", "### Tasks", "", *_table(result, plan)]
    conflicted = [t for t in result.tasks.values() if t.status == TaskStatus.CONFLICTED]
    resolved = [t for t in result.tasks.values() if t.resolved_conflict]
    lines += ["", "### Conflicts", ""]
    lines += _listed(resolved, _resolved_line, result.run_id)
    lines += _listed(conflicted, _conflict_line, result.run_id) or (
        [] if resolved else ["None: every finished task merged cleanly."]
    )
    unsuccessful = [
        t
        for t in result.tasks.values()
        if t.status in FAILED_TASK_STATUSES - {TaskStatus.CONFLICTED}
        or t.status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED)
    ]
    if unsuccessful:
        lines += ["", "### Failed and skipped tasks", ""]
        lines += _listed(unsuccessful, _failure_line, result.run_id)
    lines += [
        "",
        "---",
        f"Written by magsag from run `{result.run_id}`; `magsag pr {result.run_id}` "
        "brings it up to date. Each task's work is a checkpoint commit on "
        f"`magsag/{result.run_id}/tasks/<task>`.",
    ]
    body = "\n".join(lines) + "\n"
    if len(body) > MAX_BODY:  # only very long names get here: cut, and say so
        body = body[: MAX_BODY - 200] + f"\n\n… cut; `magsag status {result.run_id}` has the rest\n"
    return body


def _table(result: RunResult, plan: Plan) -> list[str]:
    rows = [
        "| Task | Status | Attempts | Checks passed | Cost | Commit | Files changed |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    tasks = list(result.tasks.values())
    for task in tasks[:TABLE_ROWS]:
        checks = len(plan.task(task.name).checks)
        rows.append(
            f"| `{task.name}` | {MARKS[task.status]} {task.status.value} | {task.attempts} "
            f"| {_checks(task, checks)} | ${task.usage.cost_usd:.4f} "
            f"| {f'`{task.commit[:10]}`' if task.commit else '—'} "
            f"| {len(task.changed_files) if task.changed_files else '—'} |"
        )
    if len(tasks) > TABLE_ROWS:
        rest = Counter(t.status.value for t in tasks[TABLE_ROWS:])
        more = ", ".join(f"{n} {status}" for status, n in sorted(rest.items()))
        rows += [
            "",
            f"… and {len(tasks) - TABLE_ROWS} more tasks ({more}): "
            f"`magsag status {result.run_id} --json` lists every one.",
        ]
    return rows


def _checks(task: TaskResult, checks: int) -> str:
    """Every check passed when the task succeeded: they are its Definition of Done (a
    failed task's error says what failed it)."""
    return f"{checks}/{checks}" if checks and task.status == TaskStatus.SUCCEEDED else "—"


def _listed(tasks: list[TaskResult], line, run_id: str) -> list[str]:
    lines = [line(task) for task in tasks[:LISTED]]
    if len(tasks) > LISTED:
        lines.append(
            f"- … and {len(tasks) - LISTED} more: `magsag status {run_id} --json` lists them all"
        )
    return lines


def _conflict_line(task: TaskResult) -> str:
    files = ", ".join(f"`{f}`" for f in task.conflict_files[:10])
    more = f" and {len(task.conflict_files) - 10} more" if len(task.conflict_files) > 10 else ""
    where = f"; its work is on its branch at `{task.commit[:10]}`" if task.commit else ""
    return f"- `{task.name}` conflicted with the integration branch in {files}{more}{where}"


def _resolved_line(task: TaskResult) -> str:
    files = ", ".join(f"`{f}`" for f in task.conflict_files[:10])
    return (
        f"- `{task.name}` conflicted in {files}; a resolver merged both sides "
        f"(${task.resolve_usage.cost_usd:.4f})"
    )


def _failure_line(task: TaskResult) -> str:
    after = f" after {task.attempts} attempts" if task.attempts > 1 else ""
    reason = task.error or (
        "a task it depends on did not succeed"
        if task.status == TaskStatus.SKIPPED
        else "no reason recorded"
    )
    return f"- `{task.name}` {task.status.value}{after}: {_cell(reason, REASON_CHARS)}"


def _cell(text: str, limit: int) -> str:
    """One line, at most limit characters, safe inside a Markdown list or table."""
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
