"""How runs and plans read in a terminal."""

from magsag.cli.overview import Overview
from magsag.contracts.durations import format_duration
from magsag.contracts.plan import Plan
from magsag.contracts.run import Gate, GateStatus, RunResult, TaskResult, TaskStatus, Usage

MARKS = {
    TaskStatus.PENDING: "·",
    TaskStatus.RUNNING: "▶",
    TaskStatus.SUCCEEDED: "✓",
    TaskStatus.FAILED: "✗",
    TaskStatus.CONFLICTED: "⚠",
    TaskStatus.SKIPPED: "-",
    TaskStatus.CANCELLED: "■",
}


def task_line(task: TaskResult) -> str:
    parts = [f"{MARKS[task.status]} {task.name:<24} {task.status.value}"]
    if task.stale:
        parts.append("(stale: no agent output for a while)")
    if task.resolving:
        parts.append("(resolving conflict)")
    elif task.resolved_conflict:
        parts.append(f"(resolved conflict in {', '.join(task.conflict_files)})")
    if task.started_at and task.finished_at:
        parts.append(f"in {format_duration((task.finished_at - task.started_at).total_seconds())}")
    winner = next((c for c in task.candidates if c.won), None)
    if winner is not None:
        parts.append(f"best of {len(task.candidates)}: candidate {winner.number}")
    elif task.attempts > 1:
        parts.append(f"after {task.attempts} attempts")
    if task.commit:
        parts.append(task.commit[:10])
    if task.usage.cost_usd or task.usage.output_tokens:
        parts.append(cost_text(task.usage))
    if task.error:
        parts.append(f"— {task.error}")
    return "  ".join(parts)


def failure_lines(view: Overview, run_id: str) -> list[str]:
    """The latest failures a line each (the first of a task's error), then how many more."""
    lines = [_one_line(task_line(task)) for task in view.failures]
    if more := view.more_failures():
        lines.append(f"… and {more} more failed: `magsag status {run_id} --json` lists them all")
    return lines


def _one_line(text: str) -> str:
    """The first line of text, with a mark when there is more."""
    first, _, rest = text.partition("\n")
    return first + (" …" if rest.strip() else "")


def run_summary(result: RunResult) -> list[str]:
    counts: dict[str, int] = {}
    for task in result.tasks.values():
        counts[task.status.value] = counts.get(task.status.value, 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"run {result.run_id} {result.status.value}: {tally}"]
    if result.error:
        lines.append(f"error: {result.error}")
    if result.waiting_on:
        lines.append(waiting_line(result.waiting_on))
    if result.usage.cost_usd or result.usage.output_tokens:
        lines.append(f"usage: {cost_text(result.usage)}")
    tip = (result.integration_commit or "")[:10]
    lines.append(f"integration branch {result.integration_branch} at {tip}")
    for gate in result.gates.values():
        lines.append(gate_line(result.run_id, gate))
    if result.pull_request:
        lines.append(pull_request_line(result))
    if result.resumed_from:
        lines.append(f"resumed from run {result.resumed_from}")
    for later in result.resumed_as:
        lines.append(f"resumed as run {later}")
    return lines


def pull_request_line(result: RunResult) -> str:
    pr = result.pull_request
    if pr.error:
        return f"pull request not delivered: {pr.error}"
    return f"pull request {pr.action}: {pr.url}"


def waiting_line(what: str) -> str:
    return f"⏸ waiting: {what}"


def gate_line(run_id: str, gate: Gate) -> str:
    kind, _, name = gate.id.partition(":")
    if gate.status == GateStatus.WAITING:
        return (
            f"⏸ {gate.id} waits for approval: magsag approve {run_id} --{kind} {name}"
            f" (or magsag reject ...)"
        )
    if gate.status == GateStatus.NOT_REACHED:
        return f"· {gate.id} will wait for approval"
    reason = f": {gate.reason}" if gate.reason else ""
    when = f" at {gate.at:%Y-%m-%d %H:%M:%S}" if gate.at else ""
    mark = "✓" if gate.status == GateStatus.APPROVED else "✗"
    return f"{mark} {gate.id} {gate.status.value} by {gate.by}{when}{reason}"


def cost_text(usage: Usage) -> str:
    tokens = f"{usage.input_tokens + usage.cache_read_tokens} in / {usage.output_tokens} out"
    estimate = " (estimated)" if usage.cost_estimated else ""
    return f"${usage.cost_usd:.4f}{estimate}, {tokens} tokens"


def plan_layers(plan: Plan) -> list[list[str]]:
    """Tasks grouped by depth: layer k holds tasks whose longest dependency chain is k."""
    depth: dict[str, int] = {}
    for task in plan.tasks:  # dependencies may come later in plan order: resolve lazily
        _depth(plan, task.name, depth)
    layers: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for task in plan.tasks:
        layers[depth[task.name]].append(task.name)
    return layers


def _depth(plan: Plan, name: str, memo: dict[str, int]) -> int:
    if name not in memo:
        deps = plan.task(name).depends_on
        memo[name] = 1 + max((_depth(plan, d, memo) for d in deps), default=-1)
    return memo[name]
