"""Lone surrogate escapes in JSON, found before the JSON parser sees them.

JSON may write half of a UTF-16 pair alone (`"\\ud800"`), which is no character. yajl, under
ijson, decodes it as `?`, and `"\\ud800\\u0041"` as one wrong character (it pairs a high
surrogate with whatever escape follows): a manifest would be stored with names it never had.
This reader sits between the upload and the parser. It replaces each lone surrogate escape by
`\\u0000`, an escape of the same length that no accepted name may contain, and remembers the
first one, so that the parser can refuse the entry holding it by name.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsRead

MARKER = "\x00"
_MARKER_ESCAPE = b"\\u0000"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ESCAPE_LENGTH = 6
# Held back from each read: an escape pair (12 bytes) may straddle two reads.
_HOLD_BACK = 2 * _ESCAPE_LENGTH - 1
_BACKSLASH = 0x5C


class SurrogateGuard:
    """A binary stream that reads like `stream`, lone surrogate escapes replaced by `\\u0000`."""

    def __init__(self, stream: SupportsRead[bytes]) -> None:
        self._stream = stream
        self._carry = b""
        # Whether the first byte of the carry follows an odd run of backslashes (is escaped).
        self._escaped_start = False
        self.first_lone_escape: str | None = None

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            chunk = self._stream.read(size)
            window = self._carry + chunk
            out = self._scan(window, at_end=not chunk)
            if out or not chunk:
                return out

    def _scan(self, window: bytes, *, at_end: bool) -> bytes:
        """Emit what can be decided of `window`; keep the rest for the next read."""
        emit_end = len(window) if at_end else max(0, len(window) - _HOLD_BACK)
        escapes = [
            (m.start(), m.group())
            for m in _SURROGATE_ESCAPE.finditer(window)
            if self._unescaped(window, m.start())
        ]
        lone: list[int] = []
        decided_end = emit_end
        i = 0
        # Escapes starting before emit_end are decided now; a pair's low half may lie beyond.
        while i < len(escapes) and escapes[i][0] < emit_end:
            start, text = escapes[i]
            following = escapes[i + 1] if i + 1 < len(escapes) else None
            if (
                _is_high(text)
                and following is not None
                and following[0] == start + _ESCAPE_LENGTH
                and not _is_high(following[1])
            ):
                decided_end = max(decided_end, start + 2 * _ESCAPE_LENGTH)
                i += 2
                continue
            lone.append(start)
            if self.first_lone_escape is None:
                self.first_lone_escape = text.decode("ascii")
            decided_end = max(decided_end, start + _ESCAPE_LENGTH)
            i += 1
        if lone:
            edited = bytearray(window)
            for start in lone:
                edited[start : start + _ESCAPE_LENGTH] = _MARKER_ESCAPE
            window = bytes(edited)
        return self._emit(window, decided_end)

    def _emit(self, window: bytes, emit_end: int) -> bytes:
        self._escaped_start = self._odd_backslashes_before(window, emit_end)
        self._carry = window[emit_end:]
        return window[:emit_end]

    def _unescaped(self, window: bytes, position: int) -> bool:
        """Whether the backslash at `position` starts an escape (is not itself escaped)."""
        return not self._odd_backslashes_before(window, position)

    def _odd_backslashes_before(self, window: bytes, position: int) -> bool:
        run = 0
        while position - run > 0 and window[position - run - 1] == _BACKSLASH:
            run += 1
        if run == position and self._escaped_start:
            run += 1
        return run % 2 == 1


def _is_high(escape: bytes) -> bool:
    """`\\uD800`-`\\uDBFF` begin a pair; `\\uDC00`-`\\uDFFF` end one."""
    return escape[3:4] in b"89abAB"
