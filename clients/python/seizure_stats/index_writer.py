"""The balanced index's cache file, written as the index's lines arrive from the service."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from seizure_stats.atomic_files import move_into_place, share

if TYPE_CHECKING:
    from seizure_stats.answer_cache import Record

# Cheap to write and still a tenth of the text: the same few names and digits over again.
INDEX_GZIP_LEVEL = 1


class IndexWriter:
    """A cache file of the balanced index, written as its lines arrive; it takes its place only
    once every line has (`commit`), so an index read in part is never kept."""

    def __init__(self, record: Record, *, also: Path | None) -> None:
        self.record = record
        self._also = also
        record.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=".tmp-", dir=record.path.parent)
        self._temporary = Path(name)
        self._raw = os.fdopen(descriptor, "wb")
        share(descriptor)
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=INDEX_GZIP_LEVEL)
        self._pending: list[str] = [json.dumps(record.to_json()) + "\n"]
        self._pending_size = 0

    def write_line(self, line: str) -> None:
        self._pending.append(line + "\n")
        self._pending_size += len(line) + 1
        if self._pending_size > 1 << 16:  # one compressor call per 64 KiB, not per line
            self._flush_pending()

    def commit(self) -> None:
        try:
            self._flush_pending()
            self._gzip.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            move_into_place(self._temporary, self.record.path, also=self._also)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self._gzip.close()
        self._raw.close()
        self._temporary.unlink(missing_ok=True)

    def _flush_pending(self) -> None:
        self._gzip.write("".join(self._pending).encode())
        self._pending, self._pending_size = [], 0
