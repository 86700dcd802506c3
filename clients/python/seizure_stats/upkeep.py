"""What the owner of a cache directory does with the service, beside asking questions: import
a manifest, report which files are present, push scans and read what they found."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from seizure_stats.errors import APIError
from seizure_stats.schemas.datasets import ImportResponse, PresenceResult
from seizure_stats.schemas.scans import ScanFileRecordOut, ScanOut, ScanPartIn, SnapshotScanIssues
from seizure_stats.transport import Transport


class DatasetUpkeep:
    """The client's calls that keep a dataset up to date (SeizureStatsClient has them all)."""

    _transport: Transport

    def import_manifest(
        self, dataset: str, manifest: Path | str | IO[bytes], *, source: str = ""
    ) -> ImportResponse:
        """Upload a manifest.json (a path, or an open binary file; gzip is detected)."""
        if isinstance(manifest, str | Path):
            path = Path(manifest)
            with path.open("rb") as handle:
                return self.import_manifest(dataset, handle, source=source or path.name)
        head = manifest.read(2)
        manifest.seek(0)
        headers = {"Content-Type": "application/json"}
        if head == b"\x1f\x8b":
            headers["Content-Encoding"] = "gzip"
        request = self._transport.build(
            "POST",
            f"/api/v1/datasets/{dataset}/snapshots",
            params={"source": source} if source else None,
            content=_read_chunks(manifest),
            headers=headers,
        )
        # An upload cannot be replayed from a consumed stream: no retries here.
        response = self._transport.send(request, retry=False)
        return ImportResponse.model_validate(response.json())

    def report_presence(
        self, dataset: str, *, present: Iterable[str] = (), missing: Iterable[str] = ()
    ) -> PresenceResult:
        body = {"present": list(present), "missing": list(missing)}
        data = self._transport.json("POST", f"/api/v1/datasets/{dataset}/presence", json=body)
        return PresenceResult.model_validate(data)

    def push_scan_part(self, dataset: str, part: ScanPartIn) -> ScanOut:
        """Push one part of a scan (gzip JSON). Safe to retry: an identical part is a no-op."""
        body = gzip.compress(part.model_dump_json().encode(), compresslevel=5)
        request = self._transport.build(
            "POST",
            f"/api/v1/datasets/{dataset}/scan-parts",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        return ScanOut.model_validate(self._transport.send(request).json())

    def scan_files(self, dataset: str, *, counts: bool = False) -> list[ScanFileRecordOut]:
        """What the service knows per cache file (empty for a dataset it does not know)."""
        path = f"/api/v1/datasets/{dataset}/scan-files"
        try:
            data = self._transport.json("GET", path, params={"counts": "true"} if counts else None)
        except APIError as exc:
            if exc.status_code == 404:
                return []
            raise
        return [ScanFileRecordOut.model_validate(r) for r in data]

    def scan(self, dataset: str, scan_id: str) -> ScanOut:
        return ScanOut.model_validate(
            self._transport.json("GET", f"/api/v1/datasets/{dataset}/scans/{scan_id}")
        )

    def scan_issues(self, dataset: str, snapshot: int) -> SnapshotScanIssues:
        path = f"/api/v1/datasets/{dataset}/snapshots/{snapshot}/scan-issues"
        return SnapshotScanIssues.model_validate(self._transport.json("GET", path))


def _read_chunks(stream: IO[bytes], size: int = 1024 * 1024) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
