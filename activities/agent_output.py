"""What an attempt's processes print, on its way to the log and the parser, bounded.

Every pipe of a process is read to its end by a Pump, in chunks: into the attempt's log
until the log reaches its cap (MAGSAG_LOG_CAP_BYTES), where a one-line note says it was
cut; the rest is read and dropped, so an agent never blocks on a full pipe. An agent's
JSON stream is also split into lines for its parser. A line longer than LINE_LIMIT_BYTES
never sits whole in memory: its JSON strings are clipped while it streams by, so it
still parses (a `result` message with a huge text keeps its cost and usage); a line that
is still too long after that reaches the parser as a one-line note instead.
"""

import json
import logging
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

LOG_CAP_ENV = "MAGSAG_LOG_CAP_BYTES"
LOG_CAP_BYTES = 50 * 1024 * 1024
LINE_LIMIT_BYTES = 4 * 1024 * 1024
# What a clipped line keeps of each string: far more than any event or error shows.
STRING_KEEP_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024

logger = logging.getLogger(__name__)


def log_cap_bytes() -> int:
    """The worker's MAGSAG_LOG_CAP_BYTES, or the default when unset or not a number."""
    raw = os.environ.get(LOG_CAP_ENV)
    try:
        return int(raw) if raw else LOG_CAP_BYTES
    except ValueError:
        logger.warning("%s=%r is not a number of bytes; using %d", LOG_CAP_ENV, raw, LOG_CAP_BYTES)
        return LOG_CAP_BYTES


def read_from(path: Path, offset: int) -> str:
    """What a log holds from `offset` on (what one process of the attempt printed)."""
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


class CappedLog:
    """An attempt's log file that stops growing at `cap` bytes, with a note where it was cut.

    The file is opened for appending: an attempt run again after its worker died adds to
    the same log, under the same cap.
    """

    def __init__(self, file: BinaryIO, cap: int) -> None:
        self._file = file
        self._cap = cap
        self._size = file.seek(0, os.SEEK_END)
        self.cut = self._size >= cap  # an earlier run of the attempt already cut it

    def write(self, data: bytes) -> None:
        if self.cut:
            return
        room = self._cap - self._size
        if len(data) <= room:
            self._file.write(data)
            self._size += len(data)
            return
        self._file.write(data[: max(room, 0)])
        self._file.write(
            f"\n[magsag: log cut at {self._cap} bytes ({LOG_CAP_ENV}); the rest of this "
            "attempt's output was read and dropped]\n".encode()
        )
        self._size = self._cap
        self.cut = True

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        return self._file.tell()


# The inside of a JSON string up to its closing quote; it stops short of a backslash
# only when that is the last byte of the chunk (its escaped byte comes next).
_STRING_BODY = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.S)
_LONGEST_ESCAPE = len(rb"\u0000")


class StringClipper:
    """Copies a JSON text chunk by chunk into `out`, keeping at most `keep` bytes of each
    string: the copy is valid JSON whenever the text is."""

    def __init__(self, keep: int) -> None:
        self.out = bytearray()
        self._keep = keep
        self._in_string = False
        self._start = 0  # where the inside of the current string begins in `out`
        self._dropped = 0  # bytes of the current string left out
        self._carry = b""  # a backslash whose escaped byte is in the next chunk

    def feed(self, data: bytes) -> None:
        data, self._carry = self._carry + data, b""
        pos = 0
        while pos < len(data):
            if not self._in_string:
                quote = data.find(b'"', pos)
                end = len(data) if quote < 0 else quote + 1
                self.out += data[pos:end]
                pos = end
                self._in_string = quote >= 0
                self._start, self._dropped = len(self.out), 0
                continue
            body_end = _STRING_BODY.match(data, pos).end()
            self._take(data[pos:body_end])
            if body_end == len(data):
                return
            if data[body_end] == ord("\\"):
                self._carry = data[body_end:]
                return
            self._close()
            pos = body_end + 1

    def _take(self, body: bytes) -> None:
        if self._dropped:
            self._dropped += len(body)
            return
        room = self._keep - (len(self.out) - self._start)
        if len(body) <= room:
            self.out += body
            return
        self.out += body[:room]
        kept_end = _whole_end(self.out, self._start)
        self._dropped = len(body) - room + len(self.out) - kept_end
        del self.out[kept_end:]

    def _close(self) -> None:
        if self._dropped:
            self.out += f" [magsag: {self._dropped} bytes clipped]".encode()
        self.out += b'"'
        self._in_string = False


def _whole_end(out: bytearray, start: int) -> int:
    r"""Where the inside of a string that begins at `start` ends without half of a UTF-8
    character or of an escape sequence (\n, \\, \u00e9) at its end."""
    end = len(out)
    lead = end - 1
    while lead > max(start, end - 4) and out[lead] & 0xC0 == 0x80:  # continuation bytes
        lead -= 1
    if lead >= start and out[lead] >= 0xC0 and end - lead < _utf8_length(out[lead]):
        end = lead
    backslash = out.rfind(b"\\", max(start, end - _LONGEST_ESCAPE), end)
    if backslash < 0:
        return end
    while backslash > start and out[backslash - 1] == ord("\\"):  # the whole run
        backslash -= 1
    return backslash


def _utf8_length(lead: int) -> int:
    return 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2


class LineSplitter:
    """Splits a stream into lines of at most `limit` bytes: a longer line is clipped by a
    StringClipper as it streams, and one still too long becomes a one-line note."""

    def __init__(self, limit: int = LINE_LIMIT_BYTES, keep: int = STRING_KEEP_BYTES) -> None:
        self._limit = limit
        self._keep = keep
        self._start()

    def feed(self, chunk: bytes) -> list[bytes]:
        *complete, rest = chunk.split(b"\n")
        lines = []
        for piece in complete:
            self._add(piece)
            lines.append(self._end())
        self._add(rest)
        return lines

    def finish(self) -> list[bytes]:
        """The last line, when the stream ended without a newline."""
        return [self._end()] if self._length else []

    def _start(self) -> None:
        self._line = bytearray()
        self._clipper: StringClipper | None = None
        self._length = 0  # bytes of the line read, clipped or not
        self._too_long = False

    def _add(self, piece: bytes) -> None:
        self._length += len(piece)
        if self._too_long:
            return
        if self._clipper is None:
            self._line += piece
            if len(self._line) <= self._limit:
                return
            self._clipper = StringClipper(self._keep)
            piece, self._line = bytes(self._line), bytearray()
        self._clipper.feed(piece)
        if len(self._clipper.out) > self._limit:
            self._too_long, self._clipper = True, None

    def _end(self) -> bytes:
        if self._too_long:
            line = (
                f"[magsag: a line of {self._length} bytes was too long to read; it is in the log]"
            ).encode()
        else:
            line = bytes(self._clipper.out if self._clipper else self._line)
        self._start()
        return line


class Pump:
    """Reads one pipe of a process to its end: into the log, and, for an agent's stdout,
    line by line into its parser, whose events go to the task's JSONL file."""

    def __init__(
        self,
        stream,
        log: CappedLog,
        parser=None,
        events_path: Path | None = None,
        attempt: int = 0,
    ) -> None:
        self._stream = stream
        self._log = log
        self._parser = parser
        self._events_path = events_path
        self._attempt = attempt
        self._lines = LineSplitter()
        self._waiting_since: float | None = None

    def idle_for(self, now: float) -> float:
        """How long the pump has waited on an empty pipe (0 while it is busy)."""
        return 0.0 if self._waiting_since is None else now - self._waiting_since

    async def run(self) -> None:
        events = self._events_path.open("a") if self._parser and self._events_path else None
        try:
            while True:
                self._waiting_since = time.monotonic()
                chunk = await self._stream.read(CHUNK_BYTES)
                self._waiting_since = None
                if not chunk:
                    break
                self._log.write(chunk)
                self._log.flush()
                if self._parser:
                    self._parse(self._lines.feed(chunk), events)
            if self._parser:
                self._parse(self._lines.finish(), events)
        finally:
            if events:
                events.close()

    def _parse(self, lines: list[bytes], events) -> None:
        for line in lines:
            for event in self._parser.feed(line.decode(errors="replace")):
                if events:
                    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
                    record = {"at": stamp, "attempt": self._attempt, **event}
                    events.write(json.dumps(record) + "\n")
                    events.flush()
