"""The reader that finds lone surrogate escapes before yajl mangles them, checked against Python's
own JSON decoder on generated documents, read whole and one byte at a time."""

from __future__ import annotations

import io
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.ingest.surrogates import SurrogateGuard

LONE = re.compile("[\ud800-\udfff]")


class Trickle(io.RawIOBase):
    """A stream that hands out at most `step` bytes per read, as a slow upload would."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._at : self._at + size]
        self._at += len(chunk)
        return chunk


def guarded(data: bytes, step: int) -> tuple[bytes, str | None]:
    guard = SurrogateGuard(Trickle(data, step))
    out = b"".join(iter(lambda: guard.read(65536), b""))
    return out, guard.first_lone_escape


# Pieces that make the hard cases likely: backslash runs, surrogate halves in either case, a
# pair split by anything, and escapes that are only text after an escaped backslash.
PIECES = st.sampled_from(
    [
        "\\\\",
        "\\ud800",
        "\\uDBFF",
        "\\udc00",
        "\\uDFFF",
        "\\ud83d\\ude00",
        "\\u0041",
        "\\u00e9",
        "ud800",
        "uDC00",
        "\\n",
        '\\"',
        "a",
        "_",
        "\u00e9",
    ]
)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(
    strings=st.lists(st.lists(PIECES, max_size=12).map("".join), min_size=1, max_size=6),
    step=st.sampled_from([1, 2, 5, 7, 11, 12, 13, 4096]),
)
def test_lone_escapes_become_nul_and_everything_else_is_untouched(
    strings: list[str], step: int
) -> None:
    document = ("[" + ", ".join(f'"{s}"' for s in strings) + "]").encode()
    expected = [LONE.sub("\x00", value) for value in json.loads(document)]
    out, first = guarded(document, step)
    assert json.loads(out) == expected
    assert len(out) == len(document)
    if first is None:
        assert out == document
    else:
        assert LONE.search("".join(json.loads(document)))
        assert first.lower() in document.decode().lower()


def test_the_first_lone_escape_is_remembered_as_written() -> None:
    out, first = guarded(b'["ok \\ud83d\\ude00", "x\\uDC01\\ud800"]', 3)
    assert first == "\\uDC01"
    assert json.loads(out) == ["ok \U0001f600", "x\x00\x00"]
