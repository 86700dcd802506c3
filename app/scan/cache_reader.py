"""Scanning a cache directory: list it, decide what to read, read new or changed files in a pool.

A file whose size and mtime equal what an earlier scan recorded is not opened: its counts come
from that record. Everything else matching the pattern is read by `read_cache_file`, in worker
processes when there is more than a little to read.
"""

from __future__ import annotations

import fnmatch
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.errors import InvalidRequestError
from app.scan.file_result import FileResult, shard_of, to_wire
from app.scan.npz import read_cache_file
from seizure_stats.schemas.scans import ScanPartIn

DEFAULT_PATTERN = "*_windows.npz"
# Below this many files to read, starting worker processes costs more than it saves.
MIN_FILES_FOR_POOL = 8
ResultCallback = Callable[[FileResult], None]


@dataclass(frozen=True)
class ListedFile:
    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CacheListing:
    """One listing of a cache directory: the files to scan and the other regular files."""

    directory: Path
    scanned: list[ListedFile]  # sorted by name
    others: list[str]  # sorted


@dataclass(frozen=True)
class ScanPlan:
    listing: CacheListing
    to_read: list[ListedFile]
    reused: list[FileResult]


def list_cache_dir(
    directory: Path,
    *,
    pattern: str = DEFAULT_PATTERN,
    shard: tuple[int, int] = (0, 1),
) -> CacheListing:
    """Regular files directly in `directory` that belong to `shard`, by name; stat only."""
    if not directory.is_dir():
        raise InvalidRequestError(f"cache directory {str(directory)!r} does not exist")
    index, count = shard
    scanned: list[ListedFile] = []
    others: list[str] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if count > 1 and shard_of(entry.name, count) != index:
                continue
            try:
                if not entry.is_file():
                    continue
                stat = entry.stat()
            except OSError:  # vanished while listing
                continue
            if fnmatch.fnmatchcase(entry.name, pattern):
                scanned.append(ListedFile(entry.name, stat.st_size, stat.st_mtime_ns))
            else:
                others.append(entry.name)
    scanned.sort(key=lambda f: f.name)
    return CacheListing(directory, scanned, sorted(others))


def plan_scan(listing: CacheListing, known: Mapping[str, tuple[int, int]]) -> ScanPlan:
    """Which files to read: those without a record of the same size and mtime_ns."""
    to_read: list[ListedFile] = []
    reused: list[FileResult] = []
    for listed in listing.scanned:
        if known.get(listed.name) == (listed.size, listed.mtime_ns):
            reused.append(FileResult(listed.name, listed.size, listed.mtime_ns, "ok", reused=True))
        else:
            to_read.append(listed)
    return ScanPlan(listing, to_read, reused)


def read_files(
    directory: Path,
    files: list[ListedFile],
    *,
    workers: int | None = None,
    on_result: ResultCallback | None = None,
) -> list[FileResult]:
    """Read the labels of `files` (a process pool of `workers`, default: the machine's cores)."""
    tasks = [(str(directory / f.name), f.name, f.size, f.mtime_ns) for f in files]
    workers = max(1, workers or os.cpu_count() or 1)
    results: list[FileResult] = []
    for result in _results(tasks, workers):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _results(tasks: list[tuple[str, str, int, int]], workers: int) -> Iterator[FileResult]:
    if workers == 1 or len(tasks) < MIN_FILES_FOR_POOL:
        yield from map(read_cache_file, tasks)
        return
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    with _pool_context().Pool(min(workers, len(tasks))) as pool:
        yield from pool.imap_unordered(read_cache_file, tasks, chunksize=chunksize)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux: a pool starts in milliseconds instead of half a second of imports.

    The children only run `read_cache_file` and leave with os._exit, so the database
    connections they inherit are never used or closed by them. Elsewhere fork is unsafe with
    system libraries; forkserver imports the reader once and forks workers from there.
    """
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["app.scan.npz"])
    return context


def scan_part(
    plan: ScanPlan,
    *,
    scan_id: str,
    shard: tuple[int, int] = (0, 1),
    workers: int | None = None,
    on_result: ResultCallback | None = None,
) -> tuple[ScanPartIn, list[FileResult]]:
    """Read what the plan says and describe the part for the service; also the fresh results."""
    fresh = read_files(plan.listing.directory, plan.to_read, workers=workers, on_result=on_result)
    results = sorted([*fresh, *plan.reused], key=lambda r: r.name)
    part = ScanPartIn(
        scan_id=scan_id,
        shard_index=shard[0],
        shard_count=shard[1],
        files=[to_wire(r) for r in results],
        other_files=plan.listing.others,
    )
    return part, fresh
