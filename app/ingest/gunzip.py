"""Gunzipping manifests in bounded pieces, with one rule for what may follow a gzip stream.

The rule, used by uploads and by local imports alike: concatenated gzip members are read one
after another, as gzip(1) and Python's gzip module do; zero bytes after the last member (tape
or block padding) are ignored, as gzip(1) does; any other byte after the last member is
refused, with how many such bytes there are and the first few of them.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO

from app.errors import UnreadableManifestError

GZIP_MAGIC = b"\x1f\x8b"
# Inflate at most this much per step, so a small input can never balloon in memory.
INFLATE_PIECE = 1024**2
READ_SIZE = 64 * 1024
SHOWN_TRAILING_BYTES = 16


def _new_member() -> zlib._Decompress:
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


class GzipInflater:
    """Push compressed bytes in with `feed`, take inflated pieces out; `finish` at the end.

    `label` names the input in messages ("body", "manifest file 'm.json.gz'").
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.consumed = 0  # compressed bytes of gzip members taken in so far
        self._member: zlib._Decompress | None = _new_member()
        self._undecided = b""  # a lone first magic byte after a member: another one may follow
        self._trailing = 0  # bytes after the last member that start no new member
        self._trailing_head = b""
        self._trailing_nonzero = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """Inflate `chunk`, yielding pieces of at most INFLATE_PIECE bytes."""
        pending = chunk
        while pending:
            if self._member is None:
                pending = self._after_member(pending)
                continue
            try:
                data = self._member.decompress(pending, INFLATE_PIECE)
            except zlib.error as exc:
                raise UnreadableManifestError(f"{self.label} is not valid gzip: {exc}") from exc
            if self._member.eof:
                # What follows the member's end is in unused_data. The unconsumed tail may hold
                # the same bytes and never empties: never feed an ended member again.
                rest = self._member.unused_data
                self._member = None
            else:
                rest = self._member.unconsumed_tail
            # Every step consumes input or yields output; zlib promises it, and if it ever
            # broke that promise this loop would spin, so refuse the input instead.
            if not data and len(rest) >= len(pending):
                raise UnreadableManifestError(f"{self.label} is not valid gzip: inflating stalled")
            self.consumed += len(pending) - len(rest)
            if data:
                yield data
            pending = rest

    def _after_member(self, data: bytes) -> bytes:
        """Bytes after a member: the next member (returned, to be inflated), or trailing data."""
        if self._trailing:
            self._note_trailing(data)
            return b""
        candidate = self._undecided + data
        self._undecided = b""
        if candidate == GZIP_MAGIC[:1]:
            self._undecided = candidate
            return b""
        if candidate.startswith(GZIP_MAGIC):
            self._member = _new_member()
            return candidate
        self._note_trailing(candidate)
        return b""

    def _note_trailing(self, data: bytes) -> None:
        # Counted, not kept: trailing data costs no memory however long it is.
        self._trailing += len(data)
        if len(self._trailing_head) < SHOWN_TRAILING_BYTES:
            self._trailing_head = (self._trailing_head + data)[:SHOWN_TRAILING_BYTES]
        if not self._trailing_nonzero and data.count(0) != len(data):
            self._trailing_nonzero = True

    def finish(self) -> None:
        """Check the end of the input: no member cut short, nothing but zeros after the last."""
        if self._member is not None:
            raise UnreadableManifestError(f"{self.label}: the gzip stream is truncated")
        if self._undecided:
            self._note_trailing(self._undecided)
            self._undecided = b""
        if self._trailing_nonzero:
            count = self._trailing
            shown = repr(self._trailing_head) + ("..." if count > len(self._trailing_head) else "")
            raise UnreadableManifestError(
                f"{self.label}: {count} byte{'' if count == 1 else 's'} of trailing data "
                f"after the gzip stream: {shown}"
            )


class GunzipReader(io.RawIOBase):
    """A readable gunzipped view of a binary file, holding at most one inflated piece."""

    def __init__(self, raw: IO[bytes], label: str) -> None:
        super().__init__()
        self._raw = raw
        self._inflater = GzipInflater(label)
        self._pieces: Iterator[bytes] = iter(())
        self._piece = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._piece:
            piece = next(self._pieces, None)
            if piece is not None:
                self._piece = memoryview(piece)
            elif self._ended:
                return 0
            elif chunk := self._raw.read(READ_SIZE):
                self._pieces = self._inflater.feed(chunk)
            else:
                self._ended = True
                self._inflater.finish()
        size = min(len(buffer), len(self._piece))
        buffer[:size] = self._piece[:size]
        self._piece = self._piece[size:]
        return size

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_gunzipped(raw: IO[bytes], label: str) -> IO[bytes]:
    """`raw` (a gzip file opened for reading) as a buffered binary file of its inflated bytes."""
    return io.BufferedReader(GunzipReader(raw, label), READ_SIZE)
