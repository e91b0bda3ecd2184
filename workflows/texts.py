"""What a run says in words: the Web UI's details, errors and what to do next.

Pure functions of the plan workflow's state, deterministic like it.
"""

from collections import Counter

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import constants as C
    from magsag.contracts.activities import IntegrateOutput
    from magsag.contracts.delivery import Notification
    from magsag.contracts.failures import FailureKind, kind_of
    from magsag.contracts.run import GateStatus, RunInput, RunResult, TaskResult, TaskStatus


def current_details(
    result: RunResult, counts: Counter, running: set[str], failed: set[str], resolving=()
) -> str:
    """The Web UI's current details of a run: tasks by status, the running, resolving
    and failed ones by name (a few), waits, error, cost."""
    tally = ", ".join(f"{n} {status.value}" for status, n in counts.items() if n)
    lines = [f"**tasks**: {tally}"]
    named = (("running", running), ("resolving conflict", resolving), ("failed", failed))
    for label, names in named:
        if names:
            lines.append(f"**{label}**: {_some(names)}")
    waiting = [g.id for g in result.gates.values() if g.status == GateStatus.WAITING]
    if waiting:
        lines.append(f"**waiting for approval**: {', '.join(waiting)}")
    if result.waiting_on:
        lines.append(f"**waiting**: {result.waiting_on}")
    if result.error:
        lines.append(f"**error**: {result.error}")
    lines.append(f"**cost**: ${result.usage.cost_usd:.4f}")
    return "\n\n".join(lines)


DETAILS_NAMES = 20  # names listed per line of the current details


def _some(names: set[str]) -> str:
    return _first(sorted(names))


def _first(names: list[str]) -> str:
    """The first DETAILS_NAMES names, then how many more (a phase's tasks each depend
    on the whole phase before: thousands of names)."""
    shown = names[:DETAILS_NAMES]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def task_details(inp: RunInput, task) -> str:
    """What the Web UI shows on a task workflow: runner, place in the plan, prompt."""
    lines = [
        f"**runner**: {task.runner}" + (f" (for {task.category})" if task.category else ""),
        f"**branch**: {C.task_branch(inp.run_id, task.name)}",
        f"**depends on**: {_first(task.depends_on) or 'nothing'}",
        f"**timeout**: {task.timeout_seconds:g}s, **retries**: {task.retries}",
    ]
    if task.phase:
        lines.append(f"**phase**: {task.phase}")
    if task.checks:
        lines.append("**checks**: " + "; ".join(f"`{c}`" for c in task.checks))
    prompt = task.prompt[:2000] or f"{task.summary} (the whole prompt is in the stored plan)"
    return "\n\n".join(lines) + f"\n\n**prompt**:\n\n{prompt}"


def failed_result(name: str, err: ChildWorkflowError, current: TaskResult) -> TaskResult:
    cause = err.cause
    if kind_of(err) == FailureKind.TASK_FAILED and cause.details:
        return TaskResult.model_validate(cause.details[0])
    status = TaskStatus.CANCELLED if "cancel" in type(cause).__name__.lower() else TaskStatus.FAILED
    return current.model_copy(
        update={"status": status, "error": reason(err), "finished_at": workflow.now()}
    )


def reason(err: BaseException) -> str:
    """The innermost cause, on one line: "Activity task failed" alone says nothing."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = getattr(err, "message", None) or str(err)  # a Temporal failure's own words
    return " ".join(text.split()) or type(err).__name__


def checked_out(inp: RunInput, out: IntegrateOutput) -> str:
    branch = C.integration_branch(inp.run_id)
    return f"integration branch {branch} is checked out in {out.checked_out_in}"


def next_steps(inp: RunInput, err: ActivityError, tip: str | None) -> str:
    """What the user can do after a failed integration (the work is on the task branches)."""
    resume = f"`magsag resume {inp.run_id}`"
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == FailureKind.INTEGRATION_BRANCH_MISSING:
        branch = C.integration_branch(inp.run_id)
        return f"restore it with `git branch {branch} {tip}`, then {resume}"
    return f"each task's work stays on its branch; once the cause is fixed, {resume}"


NOTIFIED_ERROR_CHARS = 1000  # of a task's error, in its notification


def notification_line(note: Notification) -> str:
    """A notification in one line, for people: what chat webhooks show."""
    head = f"magsag run {note.run_id} ({note.plan})"
    if note.event == "approval_waiting":
        kind, _, name = (note.gate or "").partition(":")
        return (
            f"{head}: {note.gate} waits for approval: magsag approve {note.run_id} --{kind} {name}"
        )
    if note.event == "run_finished":
        tally = ", ".join(f"{n} {status}" for status, n in note.counts.items())
        pull_request = f"; pull request {note.pull_request}" if note.pull_request else ""
        return f"{head} {note.status}: {tally}; ${note.cost_usd:.4f}{pull_request}"
    why = (note.error or "").strip().split("\n")[0]
    return f"{head}: task {note.task} {note.status}" + (f": {why}" if why else "")
