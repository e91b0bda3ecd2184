"""The run's own record on disk: <state>/runs/<run-id>/run.jsonl, one JSON object per
state change, appended by the activities as they make the change. It outlives the
server's history retention and reads without a server (`jq`, `runs describe` through
history/run_log.py)."""

import json
from datetime import UTC, datetime

from temporalio import activity

from magsag.activities import parking
from magsag.activities.keepalive import heartbeating
from magsag.contracts import remotes, run_files
from magsag.contracts.activities import RunEndRecord
from magsag.worker import connection


def append(log_dir: str | None, event: str, **fields) -> None:
    """Add one line to the run's record. The record is a copy of what history holds,
    so a state dir that cannot be written (disk full, permission lost) costs lines of
    it, with a warning, never the change being recorded or the run's end."""
    if not log_dir:
        return
    path = run_files.run_log(log_dir)
    record = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event}
    record.update({k: v for k, v in fields.items() if v is not None})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One short line per write on an O_APPEND file: concurrent activities do not
        # interleave.
        with path.open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")
    except OSError as err:
        activity.logger.warning("could not record %s in %s: %s", event, path, err)


@activity.defn
@heartbeating
async def record_run_end(inp: RunEndRecord) -> None:
    """The run's last line: how it ended and how every task and approval ended; and
    the worktrees its tasks parked (activities/parking.py) go."""
    if inp.repo and remotes.is_url(inp.repo):  # recorded in this host's run.jsonl
        log_dir = remotes.resolve(inp.log_dir, connection.state_dir())
        inp = inp.model_copy(update={"log_dir": log_dir, "repo": None, "run_folder": None})
    if inp.repo and inp.run_folder:
        await parking.discard_all(inp.repo, inp.run_folder)
    result = inp.result
    append(
        inp.log_dir,
        "run_finished",
        status=result.status.value,
        integration_commit=result.integration_commit,
        cost_usd=result.usage.cost_usd,
        tasks=inp.statuses or {name: task.status.value for name, task in result.tasks.items()},
        gates={gate.id: gate.model_dump(mode="json") for gate in result.gates.values()},
        pull_request=result.pull_request.model_dump(mode="json", exclude_none=True)
        if result.pull_request
        else None,
    )
