"""Receiving a manifest body: spooled to a temporary file, gunzipped with a size cap."""

from __future__ import annotations

import tempfile
import zlib
from typing import IO

from fastapi import Request

from app.errors import PayloadTooLargeError, UnreadableManifestError

GZIP_MAGIC = b"\x1f\x8b"
SPOOL_IN_MEMORY = 8 * 1024**2
# A JSON manifest gzips to about a tenth to a hundredth of its size; far beyond that is a bomb.
MAX_GZIP_RATIO = 500
RATIO_CHECK_AFTER = 16 * 1024**2


async def receive_manifest(request: Request, max_bytes: int) -> IO[bytes]:
    """The request body as a readable binary file, decoded if it is gzip."""
    declared = request.headers.get("content-length")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise UnreadableManifestError(
            f"Content-Encoding {encoding!r} is not supported; send identity or gzip"
        )
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(
            f"manifest body of {int(declared)} bytes exceeds the limit of {max_bytes} bytes"
        )
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    inflater: zlib._Decompress | None = None
    received = written = 0
    first = True
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            received += len(chunk)
            if first:
                first = False
                if encoding == "gzip" or chunk[:2] == GZIP_MAGIC:
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data = (
                chunk
                if inflater is None
                else _inflate(inflater, chunk, max_bytes - written, max_bytes)
            )
            written += len(data)
            _check_size(written, received, max_bytes, inflater is not None)
            spool.write(data)
        if inflater is not None:
            if not inflater.eof:
                raise UnreadableManifestError("gzip body is truncated")
            if inflater.unused_data:
                raise UnreadableManifestError("gzip body has trailing data after the stream")
    except BaseException:
        spool.close()
        raise
    if written == 0:
        spool.close()
        raise UnreadableManifestError("request body is empty: send a manifest.json")
    spool.seek(0)
    return spool


def _inflate(inflater: zlib._Decompress, chunk: bytes, room: int, max_bytes: int) -> bytes:
    try:
        # Never inflate more than one byte past the limit, whatever the chunk expands to.
        data = inflater.decompress(chunk, max(room, 0) + 1)
    except zlib.error as exc:
        raise UnreadableManifestError(f"body is not valid gzip: {exc}") from exc
    if inflater.unconsumed_tail:
        raise PayloadTooLargeError(
            f"manifest exceeds the limit of {max_bytes} bytes once gunzipped"
        )
    return data


def _check_size(written: int, received: int, max_bytes: int, gzipped: bool) -> None:
    if written > max_bytes:
        raise PayloadTooLargeError(f"manifest exceeds the limit of {max_bytes} bytes")
    if gzipped and written > RATIO_CHECK_AFTER and written > MAX_GZIP_RATIO * received:
        raise PayloadTooLargeError(
            f"gzip body inflates more than {MAX_GZIP_RATIO}-fold ({received} bytes to over "
            f"{written}); refusing it as a likely decompression bomb"
        )
