"""Task results in little space: what a run carries across continue-as-new and resume.

A run of 10,000 tasks hands every finished task's state to its next execution (and a
resume to its new run) in one workflow input, which Temporal refuses above 2 MB. A row
keeps what status, describe and the scheduler need: status, commit, attempts, times,
a shortened error, conflict files and usage; the full result (changed files, each
attempt's usage) stays in the history of the execution the task ended in.

A row is a JSON list: [status, commit, attempts, started, finished, error, conflict
files, usage, host, resolved (1: a resolver resolved its conflict)], trailing empties
dropped (rows written before the host read as without one); times are tenths of a
second from the run's start, usage is [input, output, cache read, cache write, cost, estimated].

A run that continues as new hands over less than rows: the statuses of the tasks that
ended, one code a task in plan order, run-length encoded (pack_statuses: "s998f1s1");
each task's details stay in the memo of the execution it ended in (history/status.py).
"""

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from magsag.contracts.run import TaskResult, TaskRows, TaskStatus, Usage

ERROR_CHARS = 100
CONFLICT_FILES = 3

_CODE = {
    TaskStatus.PENDING: "p",
    TaskStatus.RUNNING: "r",
    TaskStatus.SUCCEEDED: "s",
    TaskStatus.FAILED: "f",
    TaskStatus.CONFLICTED: "c",
    TaskStatus.SKIPPED: "k",
    TaskStatus.CANCELLED: "x",
}
_STATUS = {code: status for status, code in _CODE.items()}


def pack(task: TaskResult, epoch: datetime) -> list:
    error = task.error or ""
    if len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 1] + "…"
    usage = task.usage
    row = [
        _CODE[task.status],
        task.commit or "",
        task.attempts,
        _offset(task.started_at, epoch),
        _offset(task.finished_at, epoch),
        error,
        task.conflict_files[:CONFLICT_FILES],
        [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.cost_usd,
            usage.cost_estimated,
        ]
        if usage != Usage()
        else [],
        task.host or "",
        1 if task.resolved_conflict else "",
    ]
    while row and (row[-1] in ("", None) or row[-1] == []):
        row.pop()
    return row


def unpack(name: str, row: list, epoch: datetime) -> TaskResult:
    code, commit, attempts, started, finished, error, conflicts, usage, host, resolved = (
        row + ["", "", 0, None, None, "", [], [], "", ""][len(row) :]
    )
    fields = {"name": name, "status": _STATUS[code], "attempts": attempts}
    if commit:
        fields["commit"] = commit
    if started is not None:
        fields["started_at"] = _time(started, epoch)
    if finished is not None:
        fields["finished_at"] = _time(finished, epoch)
    if error:
        fields["error"] = error
    if conflicts:
        fields["conflict_files"] = conflicts
    if usage:
        fields["usage"] = Usage(**dict(zip(_USAGE_FIELDS, usage, strict=False)))
    if host:
        fields["host"] = host
    if resolved:
        fields["resolved_conflict"] = True
    return TaskResult(**fields)


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "cost_estimated",
)


def pack_all(tasks: list[TaskResult], epoch: datetime) -> TaskRows:
    return TaskRows(epoch=epoch, rows={task.name: pack(task, epoch) for task in tasks})


def unpack_all(rows: TaskRows | None) -> dict[str, TaskResult]:
    if rows is None:
        return {}
    return {name: unpack(name, row, rows.epoch) for name, row in rows.rows.items()}


def _offset(at: datetime | None, epoch: datetime) -> int | None:
    return None if at is None else round((at - epoch).total_seconds() * 10)


def _time(offset: int | None, epoch: datetime) -> datetime | None:
    return None if offset is None else epoch + timedelta(seconds=offset / 10)


NOT_ENDED = "-"  # a task still pending or running, in packed statuses
_RUN = re.compile(r"([a-z-])(\d*)")


def pack_statuses(statuses: Iterable[TaskStatus | None]) -> str:
    """One code a task (None: not ended), each run of one code as the code and its
    length: 10,000 tasks that succeeded pack to "s10000"."""
    packed, last, count = [], None, 0
    for status in statuses:
        code = NOT_ENDED if status is None else _CODE[status]
        if code != last and count:
            packed.append(last + (str(count) if count > 1 else ""))
            count = 0
        last, count = code, count + 1
    if count:
        packed.append(last + (str(count) if count > 1 else ""))
    return "".join(packed)


def unpack_statuses(packed: str, names: list[str]) -> dict[str, TaskStatus]:
    """The ended tasks' statuses by name (names: every task, in the packed order)."""
    statuses, at = {}, 0
    for code, count in _RUN.findall(packed):
        end = at + int(count or 1)
        if code != NOT_ENDED:
            statuses |= dict.fromkeys(names[at:end], _STATUS[code])
        at = end
    return statuses
