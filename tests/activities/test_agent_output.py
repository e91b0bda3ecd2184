"""An agent's output, bounded: lines of any length reach the parser as JSON that still
parses, and the log stops at its cap with a note."""

import json
import random

from magsag.activities.agent_output import CappedLog, LineSplitter

TEXT = 'say "hi"\\ to \u00e9\u00e8 \U0001f600 and a\nnew line\ttab '  # every kind of escape


def split_in_chunks(data: bytes, seed: int) -> list[bytes]:
    rng, chunks, pos = random.Random(seed), [], 0
    while pos < len(data):
        size = rng.choice([1, 2, 3, 5, 7, 64, 1000])
        chunks.append(data[pos : pos + size])
        pos += size
    return chunks


def read_lines(stream: bytes, seed: int, **limits) -> list[bytes]:
    splitter = LineSplitter(**limits)
    lines = [line for chunk in split_in_chunks(stream, seed) for line in splitter.feed(chunk)]
    return lines + splitter.finish()


def test_lines_under_the_limit_pass_whole_however_they_arrive():
    message = {"type": "assistant", "text": TEXT * 1200}  # ~75 KB encoded
    stream = (json.dumps(message) + "\n" + json.dumps({"type": "result"})).encode()
    for seed in range(5):
        lines = read_lines(stream, seed, limit=100_000, keep=50)
        assert [json.loads(line) for line in lines] == [message, {"type": "result"}]


def test_a_longer_line_keeps_its_small_fields_and_clips_its_long_strings():
    result = {
        "type": "result",
        "result": TEXT * 500,
        "nested": [{"log": TEXT * 300, "n": 1}, "short"],
        "total_cost_usd": 0.0125,
        "usage": {"input_tokens": 100},
    }
    stream = json.dumps(result).encode() + b"\n"
    for seed in range(20):
        (line,) = read_lines(stream, seed, limit=1000, keep=50)
        clipped = json.loads(line)  # still valid JSON, whatever the chunking
        assert len(line) < 1000
        assert clipped["total_cost_usd"] == 0.0125 and clipped["usage"] == {"input_tokens": 100}
        assert clipped["nested"][1] == "short" and clipped["nested"][0]["n"] == 1
        text, note = clipped["result"].split(" [magsag: ")
        assert result["result"].startswith(text) and note.endswith("bytes clipped]")


def test_a_line_too_long_even_clipped_becomes_a_note():
    stream = json.dumps(list(range(100_000))).encode() + b"\n" + b'{"type": "result"}\n'
    lines = read_lines(stream, 0, limit=1000, keep=50)
    assert lines[0].startswith(b"[magsag: a line of ") and b"too long" in lines[0]
    assert json.loads(lines[1]) == {"type": "result"}


def test_the_log_is_cut_at_its_cap_with_a_note_and_stays_cut(tmp_path):
    path = tmp_path / "t.attempt-1.log"
    with path.open("ab") as file:
        log = CappedLog(file, cap=100)
        log.write(b"x" * 60)
        log.write(b"y" * 60)
        log.write(b"z" * 60)
    text = path.read_text()
    assert text.startswith("x" * 60 + "y" * 40 + "\n[magsag: log cut at 100 bytes")
    assert "z" not in text and text.count("\n") == 2
    # The same attempt run again (its worker died) appends under the same cap.
    with path.open("ab") as file:
        CappedLog(file, cap=100).write(b"more")
    assert path.read_text() == text
