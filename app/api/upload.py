"""Receiving a manifest body: spooled to a temporary file, gunzipped in bounded pieces."""

from __future__ import annotations

import tempfile
from typing import IO

from fastapi import Request

from app.api.middleware.request_body import declared_length
from app.errors import PayloadTooLargeError, UnreadableManifestError
from app.ingest.gunzip import GZIP_MAGIC, GzipInflater

SPOOL_IN_MEMORY = 8 * 1024**2
# A JSON manifest gzips to about a tenth to a hundredth of its size; far beyond that is a bomb.
MAX_GZIP_RATIO = 200
RATIO_CHECK_AFTER = 16 * 1024**2


class _Spool:
    """Counts what arrives and what is written, and enforces the limits as it goes."""

    def __init__(self, max_bytes: int) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.max_bytes = max_bytes
        self.received = 0
        self.written = 0
        self.inflater: GzipInflater | None = None

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_bytes:
            # Zero padding after the last gzip member inflates to nothing, and is read to the end
            # of the body: the limit bounds what is received too, not only what is kept.
            raise PayloadTooLargeError(f"body exceeds the limit of {self.max_bytes} bytes")
        if self.inflater is None:
            self._write(chunk)
            return
        # The ratio is judged on the compressed bytes inflated so far, not on those received:
        # a whole bomb can arrive in one chunk, and must still be caught long before the limit.
        for piece in self.inflater.feed(chunk):
            self._write(piece)

    def _write(self, data: bytes) -> None:
        self.written += len(data)
        if self.written > self.max_bytes:
            raise PayloadTooLargeError(f"manifest exceeds the limit of {self.max_bytes} bytes")
        consumed = self.inflater.consumed if self.inflater is not None else 0
        if (
            self.inflater is not None
            and self.written > RATIO_CHECK_AFTER
            and self.written > MAX_GZIP_RATIO * consumed
        ):
            raise PayloadTooLargeError(
                f"gzip body inflates more than {MAX_GZIP_RATIO}-fold ({consumed} bytes to "
                f"over {self.written}); refusing it as a likely decompression bomb"
            )
        self.file.write(data)

    def finish(self) -> IO[bytes]:
        if self.inflater is not None:
            self.inflater.finish()
        if self.written == 0:
            raise UnreadableManifestError("request body is empty: send a manifest.json")
        self.file.seek(0)
        return self.file


async def receive_manifest(request: Request, max_bytes: int) -> IO[bytes]:
    """The request body as a readable binary file, decoded if it is gzip; the caller closes it
    (`with`), which frees what was spooled to disk."""
    declared = declared_length(request.scope)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnreadableManifestError(
            f"Content-Encoding {encoding!r} is not supported; send identity or gzip"
        )
    if declared is not None and declared > max_bytes:
        raise PayloadTooLargeError(
            f"manifest body of {declared} bytes exceeds the limit of {max_bytes} bytes"
        )
    spool = _Spool(max_bytes)
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            if spool.received == 0 and (encoding == "gzip" or chunk[:2] == GZIP_MAGIC):
                spool.inflater = GzipInflater("body")
            spool.feed(chunk)
        return spool.finish()
    except BaseException:
        spool.file.close()
        raise
