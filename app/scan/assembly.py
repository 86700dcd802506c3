"""Putting a scan's per-file results together into a manifest, the same one whatever the sharding.

Files are taken in sorted name order and windows in index order (what a manifest written by a
scan lists). The window length is decided over all files at once: the length of most files
wins, and files whose rows have another length are left out with a `length_mismatch` issue.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ingest.manifest import CategoryColumns, ParsedManifest, content_hash
from app.scan.file_result import FileResult, IssueCode
from app.scan.window_categories import categorize_counts
from seizure_stats.labels import Category
from seizure_stats.schemas.scans import ScanIssueOut


@dataclass(frozen=True)
class Assembly:
    parsed: ParsedManifest | None  # None when no file contributes a window
    issues: list[ScanIssueOut]  # sorted by file name
    window_length: int | None
    seizure_windows: int

    @property
    def skipped(self) -> int:
        return len(self.issues)


def window_length(results: Iterable[FileResult]) -> int | None:
    """The samples per window of most readable files (ties: more windows, then the longer)."""
    files: Counter[int] = Counter()
    windows: Counter[int] = Counter()
    for result in results:
        if result.ok and result.n_windows:
            files[result.n_samples] += 1
            windows[result.n_samples] += result.n_windows
    if not files:
        return None
    return max(files, key=lambda length: (files[length], windows[length], length))


def assemble(results: Iterable[FileResult], full_threshold: float) -> Assembly:
    """The manifest of the usable files, and an issue for every file left out."""
    ordered = sorted(results, key=lambda r: r.name)
    length = window_length(ordered)
    issues: list[ScanIssueOut] = []
    used: list[FileResult] = []
    for result in ordered:
        if not result.ok:
            issues.append(_issue(result, result.status, result.reason))
        elif result.n_samples != length:
            reason = (
                f"windows of {result.n_samples} samples; the other files' windows have {length}"
            )
            issues.append(_issue(result, IssueCode.LENGTH_MISMATCH, reason))
        elif result.n_windows:
            used.append(result)
    if not used:
        return Assembly(None, issues, length, 0)
    parsed, seizure = _manifest(used, full_threshold)
    return Assembly(parsed, issues, length, seizure)


def _issue(result: FileResult, code: str, reason: str) -> ScanIssueOut:
    # A status is an IssueCode: set by the file reader, or checked as one when a part arrived.
    return ScanIssueOut(cache_file=result.name, code=code, reason=reason)


def _manifest(used: list[FileResult], full_threshold: float) -> tuple[ParsedManifest, int]:
    sizes = np.array([r.n_windows for r in used], dtype=np.int64)
    recording = np.repeat(np.arange(len(used), dtype=np.int32), sizes)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    window_idx = (np.arange(int(sizes.sum()), dtype=np.int64) - starts).astype(np.int32)
    n_pos = np.concatenate([r.n_pos for r in used]).astype(np.int32)
    n_samples = np.repeat(np.array([r.n_samples for r in used], dtype=np.int32), sizes)
    codes = categorize_counts(n_pos, n_samples, full_threshold)
    columns: dict[Category, CategoryColumns] = {}
    for category in Category:
        mask = codes == category
        columns[category] = CategoryColumns(
            recording=_int_array(recording[mask]),
            window_idx=_int_array(window_idx[mask]),
            n_pos=_int_array(n_pos[mask]),
            n_samples=_int_array(n_samples[mask]),
        )
    parsed = ParsedManifest(
        recordings=[r.name for r in used],
        columns=columns,
        has_sample_counts=True,
        content_hash="",
    )
    parsed.content_hash = content_hash(parsed)
    return parsed, int(np.count_nonzero(codes != Category.NO_SEIZURE))


def _int_array(values: np.ndarray[Any, Any]) -> array[int]:
    return array("i", values.astype(np.int32).tobytes())
