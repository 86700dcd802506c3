"""A bound on how long one JSON token may be, so that parsing a manifest stays linear.

yajl (ijson's C backend) lexes a token that spans several reads again from its first byte on
every read, so one string or number of L bytes costs about L * L / (2 * read size): an 8 MB
name took 0.37 s, 16 MB 1.15 s, 100 MB 24 s. No name, key or number of a manifest comes near
MAX_TOKEN_BYTES, so the reader below refuses any run of more than that many bytes without a
string quote, having passed at most that much of it to the parser: the work and memory spent
on one token are bounded, whatever length was sent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsRead

# Reads are capped at this size too, so a run within one read is always shorter than the cap.
MAX_TOKEN_BYTES = 64 * 1024
_UNESCAPED_QUOTE = re.compile(rb'(?<!\\)"')
_UNESCAPED_QUOTE_REVERSED = re.compile(rb'"(?!\\)')


class TokenTooLongError(Exception):
    """The input has a run of more than MAX_TOKEN_BYTES bytes without a string quote."""


def _first_quote(chunk: bytes, before: bytes) -> int:
    """Index of the first quote not preceded by a backslash (`before` precedes `chunk`), or -1.

    A quote after an escaped backslash (`\\\\"`) counts as escaped: that only makes a run look
    longer than it is, never shorter.
    """
    index = chunk.find(b'"')
    if index < 0 or (chunk[index - 1 : index] if index else before) != b"\\":
        return index
    match = _UNESCAPED_QUOTE.search(chunk, index + 1)
    return match.start() if match else -1


def _last_quote(chunk: bytes) -> int:
    """Index of the last quote not preceded by a backslash; only called when there is one."""
    index = chunk.rfind(b'"')
    if index <= 0 or chunk[index - 1] != ord("\\"):
        return index
    match = _UNESCAPED_QUOTE_REVERSED.search(chunk[:index][::-1])
    assert match is not None  # _first_quote found one
    return index - 1 - match.start()


class TokenLimitReader:
    """Passes a binary stream on to the parser, stopping at the first over-long run.

    The part of the run up to the cap is still passed on, so the parser has read everything
    before it and knows which entry it belongs to; the next read raises TokenTooLongError.
    Streams here (buffered files, spooled bodies) return full reads until their end, so a run
    within the cap spans at most two reads.
    """

    def __init__(self, stream: SupportsRead[bytes]) -> None:
        self._stream = stream
        self._run = 0  # bytes since the last unescaped quote, at most MAX_TOKEN_BYTES
        self._before = b""
        self._exceeded = False

    def read(self, size: int = -1) -> bytes:
        if self._exceeded:
            raise TokenTooLongError
        chunk = self._stream.read(MAX_TOKEN_BYTES if size < 0 else min(size, MAX_TOKEN_BYTES))
        if not chunk:
            return chunk
        first = _first_quote(chunk, self._before)
        run_end = len(chunk) if first < 0 else first
        if self._run + run_end > MAX_TOKEN_BYTES:
            self._exceeded = True
            passed = MAX_TOKEN_BYTES - self._run
            if passed == 0:
                raise TokenTooLongError
            return chunk[:passed]
        self._run = self._run + len(chunk) if first < 0 else len(chunk) - 1 - _last_quote(chunk)
        self._before = chunk[-1:]
        return chunk
