"""The sentences of a task's timeline in `runs describe`: its attempts and waits, then
its WIP save, its task workflow's close and its merge or conflict. history/describe.py
adds the rest (ready, gate, start, why it never ran) and orders them."""

from datetime import datetime

from magsag.contracts.durations import format_span
from magsag.contracts.run import FINISHED_TASK_STATUSES
from magsag.history.views import AttemptView, TaskView

# (when, event, text): a line of the timeline before it is ordered.
Moment = tuple[datetime, str, str]


def attempt_entries(view: TaskView) -> list[Moment]:
    entries, seen = [], set()
    for attempt in view.attempts:
        again = (attempt.candidate, attempt.attempt) in seen
        seen.add((attempt.candidate, attempt.attempt))
        began = _began(attempt, again)
        entries.append((attempt.started_at or attempt.scheduled_at, "attempt_started", began))
        if attempt.finished_at:
            entries.append((attempt.finished_at, f"attempt_{attempt.outcome}", _ended(attempt)))
    for c in view.candidates:
        if c.finished_at:
            verdict = "won" if c.won else "lost"
            size = f", {c.diff_lines} lines" if c.diff_lines is not None else ""
            text = f"candidate {c.number} ({c.runner}{size}) {verdict}: {c.reason}"
            entries.append((c.finished_at, f"candidate_{verdict}", text))
    judged_at = max((c.finished_at for c in view.candidates if c.finished_at), default=None)
    if view.judge_runner and judged_at:
        used = view.judge_usage
        text = (
            f"judged by {view.judge_runner}: ${used.cost_usd:.4f}, "
            f"{used.input_tokens} in / {used.output_tokens} out tokens"
        )
        entries.append((judged_at, "judged", text))
    for wait in view.waits:
        what = "backoff before the next attempt"
        if wait.kind == "rate_limit":
            what = "rate limited: waiting for the reset"
        entries.append((wait.started_at, wait.kind, f"{what}, {format_span(wait.seconds)}"))
    return entries


def closing_entries(view: TaskView) -> list[Moment]:
    """WIP save, the task workflow's close, and the merge or conflict."""
    entries = []
    if view.wip and view.wip.at:
        saved = (
            f"partial work saved as WIP commit {view.wip.commit[:10]} "
            f"({_files(view.wip.changed_files)})"
            if view.wip.commit
            else "no partial work to save"
        )
        removed = ", worktree removed" if view.wip.worktree_removed else ""
        entries.append((view.wip.at, "wip_saved", saved + removed))
    if view.finished_at:
        entries.append((view.finished_at, "finished", f"task workflow {_closed_word(view)}"))
    merge = view.integration
    if merge and merge.at and view.name in merge.conflicts:
        files = ", ".join(merge.conflicts[view.name])
        entries.append(
            (merge.at, "conflict", f"merge conflict in {files}; its branch keeps the work")
        )
    elif merge and merge.at and view.name in merge.merged:
        entries.append(
            (merge.at, "merged", f"merged into the integration branch ({merge.tip[:10]})")
        )
    return entries


def _began(attempt: AttemptView, again: bool) -> str:
    whose = f"candidate {attempt.candidate}: " if attempt.candidate is not None else ""
    text = f"{whose}attempt {attempt.attempt} started" + (" again" if again else "")
    if attempt.worker:
        text += f" on worker {attempt.worker}"
    if attempt.infrastructure_retries:
        text += (
            f" (run {attempt.infrastructure_retries + 1} times: a worker was lost;"
            f" last: {attempt.last_infrastructure_error})"
        )
    if attempt.resumed_session:
        text += f", continuing session {attempt.resumed_session}"
    if attempt.outcome == "running":
        text += ", running"
    return text


def _ended(attempt: AttemptView) -> str:
    took = f" after {format_span(attempt.duration_seconds)}" if attempt.duration_seconds else ""
    whose = f"candidate {attempt.candidate}: " if attempt.candidate is not None else ""
    head = f"{whose}attempt {attempt.attempt} {attempt.outcome.replace('_', ' ')}{took}"
    if attempt.outcome == "succeeded":
        saved = (
            f"checkpoint {attempt.commit[:10]} ({_files(attempt.changed_files)})"
            if attempt.commit
            else "nothing changed"
        )
        return f"{head}: {saved}, worktree removed"
    if attempt.error:
        kind = f"{attempt.error_type}: " if attempt.error_type else ""
        error = attempt.error if attempt.error.startswith(kind) else kind + attempt.error
        return f"{head}: {error}"
    return head


def _closed_word(view: TaskView) -> str:
    if view.attempts and view.attempts[-1].outcome == "succeeded":
        return "completed"
    return view.status.value if view.status in FINISHED_TASK_STATUSES else "closed"


def _files(names: list[str]) -> str:
    return f"{len(names)} file{'s' if len(names) != 1 else ''}"


def resolve_entries(view: TaskView) -> list[Moment]:
    """The resolve step of a task whose merge conflicted (on_conflict): its resolver
    attempts and the save of their partial work."""
    entries = []
    files = ", ".join(view.conflict_files) or "its files"
    merged = view.integration is not None and view.name in view.integration.merged
    if view.resolves and merged:  # closing_entries shows the merge, not the conflict
        first = view.resolves[0].scheduled_at
        entries.append((first, "conflict", f"merge conflict in {files}: handed to a resolver"))
    for attempt in view.resolves:
        began = f"resolver attempt {attempt.attempt} started on the conflict in {files}"
        entries.append((attempt.started_at or attempt.scheduled_at, "resolve_started", began))
        if not attempt.finished_at:
            continue
        took = f" after {format_span(attempt.duration_seconds)}" if attempt.duration_seconds else ""
        head = f"resolver attempt {attempt.attempt} {attempt.outcome.replace('_', ' ')}{took}"
        if attempt.outcome == "succeeded" and attempt.commit:
            text, event = f"{head}: merge commit {attempt.commit[:10]}", "resolved"
        else:
            text, event = f"{head}: {attempt.error}" if attempt.error else head, "resolve_failed"
        entries.append((attempt.finished_at, event, text))
    wip = view.resolve_wip
    if wip and wip.at and wip.commit:
        text = f"the resolver's partial work saved as WIP commit {wip.commit[:10]}"
        entries.append((wip.at, "resolve_wip_saved", text))
    return entries
