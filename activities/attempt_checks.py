"""What an attempt's agent is held to after it exits, and how a shortfall is told: the
Definition of Done (the task's checks, then its outputs) and the attempt's failure,
carrying the end of its log, what it spent and the feedback for the next attempt."""

from pathlib import Path

from temporalio.exceptions import ApplicationError

from magsag.activities.agent_output import read_from
from magsag.activities.group_run import run_in_group
from magsag.contracts.failures import AttemptFailure
from magsag.contracts.failures import FailureKind as Kind
from magsag.contracts.run import Usage

ERROR_TAIL_CHARS = 600
# How much of a failing check's output the next attempt's prompt carries.
FEEDBACK_CHARS = 1500


async def definition_of_done(
    inp, worktree, env, log, pidfile, attempt, deadline, log_path, spent: dict
):
    """Checks, then outputs. A shortfall carries feedback for the next attempt's prompt:
    the failing command and the tail of its own output; and what the agent spent, and its
    session (`spent`)."""
    for check in inp.checks:
        log.write(f"\n--- magsag check: {check}\n".encode())
        log.flush()
        start = log.tell()
        code = await run_in_group(
            ["bash", "-c", check], worktree, env, log, pidfile, attempt, deadline
        )
        if code != 0:
            output = read_from(log_path, start)[-FEEDBACK_CHARS:].strip()
            feedback = f"The check `{check}` failed (exit {code}). The end of its output:\n{output}"
            message = f"check failed (exit {code}): {check}"
            raise attempt_failure(message, Kind.CHECK_FAILED, attempt, log_path, feedback, **spent)
    missing = [path for path in inp.outputs if not (worktree / path).exists()]
    if missing:
        feedback = f"The expected output `{missing[0]}` does not exist in the worktree."
        message = f"expected output missing: {missing[0]}"
        raise attempt_failure(message, Kind.OUTPUT_MISSING, attempt, log_path, feedback, **spent)


def attempt_failure(
    message: str,
    kind: Kind,
    attempt: int,
    log_path: Path,
    feedback: str | None = None,
    usage: Usage | None = None,
    session: str | None = None,
) -> ApplicationError:
    tail = _tail(log_path)
    text = f"{message}; last output: {tail}" if tail else message
    failure = AttemptFailure(
        attempt=attempt,
        log_path=str(log_path),
        feedback=feedback,
        usage=usage or Usage(),
        session_id=session,
    )
    return failure.error(text, kind)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - ERROR_TAIL_CHARS))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in data.strip().splitlines()[-5:])
