"""Logging of `magsag worker` and `magsag server`: one line per record on stderr, with
the time (UTC), level, logger, and the run, task and activity the record is about.

MAGSAG_LOG_LEVEL sets the level (default INFO). temporalio's activity and workflow
loggers put the workflow id in each record's `extra` (temporal_activity,
temporal_workflow); the run and task are read from there, and a module logger used
inside an activity gets them from the activity's info. The dict the SDK would also
append to every message is turned off: the line says it once, readably.
"""

import logging
import os
import sys
import time
import traceback
from pathlib import Path

from temporalio import activity, workflow

from magsag.contracts import constants as C

DEFAULT_LEVEL = "INFO"
FORMAT = "%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s"


def log_level() -> int:
    """MAGSAG_LOG_LEVEL as a logging level; ValueError names the ones there are."""
    name = os.environ.get("MAGSAG_LOG_LEVEL", DEFAULT_LEVEL)
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"MAGSAG_LOG_LEVEL={name}: use DEBUG, INFO, WARNING or ERROR")
    return level


def configure_logging(file: Path | None = None) -> None:
    """Send every logger's records at or above MAGSAG_LOG_LEVEL to stderr (or to `file`,
    for a worker a command hosts beside its own output), a line each."""
    level = log_level()
    handler = logging.StreamHandler(sys.stderr)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file)
    handler.setFormatter(_LineFormatter(full_tracebacks=level <= logging.DEBUG))
    handler.addFilter(_add_where)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False


def where(record: logging.LogRecord) -> str:
    """run=<run> task=<task> activity=<type>, as much of it as the record knows."""
    details = getattr(record, "temporal_activity", None) or getattr(
        record, "temporal_workflow", None
    )
    if details is None and activity.in_activity():
        info = activity.info()
        details = {"workflow_id": info.workflow_id, "activity_type": info.activity_type}
    if not details or not details.get("workflow_id"):
        return ""
    ids = C.run_and_task(details["workflow_id"])
    if ids is None:
        text = f" workflow={details['workflow_id']}"
    else:
        run, task = ids
        text = f" run={run}" + (f" task={task}" if task else "")
    kind = details.get("activity_type")
    return text + (f" activity={kind}" if kind else "")


def _add_where(record: logging.LogRecord) -> bool:
    record.where = where(record)
    return True


class _LineFormatter(logging.Formatter):
    """UTC ISO times, and one line per record: an exception as its last line (type and
    message) unless at DEBUG, where the whole traceback follows."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, full_tracebacks: bool) -> None:
        super().__init__(FORMAT)
        self.full_tracebacks = full_tracebacks

    def formatException(self, ei) -> str:
        if self.full_tracebacks:
            return super().formatException(ei)
        return "".join(traceback.format_exception_only(ei[1])).strip()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if self.full_tracebacks else text.replace("\n", " | ")
