"""Notifications: a JSON document about a moment of the run, POSTed to a URL or given to
a command on its stdin.

A notification never fails or holds up the run: the workflow sends it beside its work
(workflows/notifier.py), with a few short attempts. Each failed attempt is recorded in
run.jsonl and the worker's log; after the last, the notification is dropped.
"""

import asyncio
import contextlib
import os
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from temporalio import activity
from temporalio.exceptions import ApplicationError

from magsag.activities.run_log import append
from magsag.contracts import constants as C
from magsag.contracts import remotes
from magsag.contracts.activities import NotifyInput
from magsag.contracts.delivery import NotifyTarget
from magsag.contracts.durations import format_duration
from magsag.contracts.failures import FailureKind
from magsag.worker import connection

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
ERROR_CHARS = 300


class NotifyError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@activity.defn
async def notify(inp: NotifyInput) -> None:
    note, target = inp.notification, inp.target
    document = note.model_dump_json()
    where = describe(target)
    try:
        if target.url is not None:
            await asyncio.to_thread(_post, _expand(target.url), document)
        else:
            await _run(target.command or [], document, inp)
    except NotifyError as err:
        attempt = activity.info().attempt
        activity.logger.warning("%s notification to %s failed: %s", note.event, where, err)
        append(_log_dir(inp), "notify_failed", notification=note.event, task=note.task,
               target=where, attempt=attempt, error=str(err))  # fmt: skip
        raise ApplicationError(
            str(err), type=FailureKind.NOTIFY_FAILED, non_retryable=err.permanent
        ) from None
    append(_log_dir(inp), "notified", notification=note.event, task=note.task, target=where)


def _log_dir(inp: NotifyInput) -> str | None:
    """The run's folder on this worker (a URL run's is under each worker's state dir)."""
    return inp.log_dir and remotes.resolve(inp.log_dir, connection.state_dir())


def describe(target: NotifyTarget) -> str:
    """The target as logs name it: a URL's scheme and host only (its path or query may
    be its secret), a command's program."""
    if target.url is None:
        return Path((target.command or ["?"])[0]).name
    if "$" in target.url:
        return target.url  # names of variables, not their values
    parts = urlsplit(target.url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


def _expand(url: str) -> str:
    """${NAME} and $NAME from the worker's environment, where a webhook's secret lives."""

    def value(found: re.Match) -> str:
        name = found.group(1) or found.group(2)
        if name not in os.environ:
            raise NotifyError(f"environment variable {name} is not set on this worker", True)
        return os.environ[name]

    return _VARIABLE.sub(value, url)


def _post(url: str, document: str) -> None:
    request = urllib.request.Request(
        url,
        data=document.encode(),
        headers={"Content-Type": "application/json", "User-Agent": "magsag"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=C.NOTIFY_REQUEST_TIMEOUT.total_seconds()):
            return
    except urllib.error.HTTPError as err:  # a 4xx will answer the same again, but 429
        permanent = 400 <= err.code < 500 and err.code != 429
        raise NotifyError(f"HTTP {err.code} {err.reason}", permanent) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise NotifyError(f"cannot POST: {reason}", isinstance(err, ValueError)) from None


async def _run(command: list[str], document: str, inp: NotifyInput) -> None:
    """The command in the run's folder, the document on its stdin; its process group is
    killed when it outlives its time."""
    log_dir = _log_dir(inp)
    cwd = Path(log_dir) if log_dir else Path.cwd()
    cwd.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        C.ENV_RUN_ID: inp.notification.run_id,
        "MAGSAG_EVENT": inp.notification.event,
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
    except OSError as err:
        raise NotifyError(f"cannot run {command[0]}: {err.strerror or err}", True) from None
    try:
        _, err = await asyncio.wait_for(
            proc.communicate(document.encode()), C.NOTIFY_REQUEST_TIMEOUT.total_seconds()
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        limit = format_duration(C.NOTIFY_REQUEST_TIMEOUT.total_seconds())
        raise NotifyError(f"{command[0]} did not end within {limit}") from None
    if proc.returncode != 0:
        said = " ".join(err.decode(errors="replace").split())[-ERROR_CHARS:]
        raise NotifyError(f"{command[0]} exited {proc.returncode}" + (f": {said}" if said else ""))
