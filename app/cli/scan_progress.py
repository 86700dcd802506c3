"""Scan progress for the command line: a live bar on a terminal, one summary line otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from app.scan.file_result import FileResult


@dataclass
class ScanTally:
    """What the files read so far held."""

    to_read: int
    read: int = 0
    windows: int = 0
    seizure_windows: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, result: FileResult) -> None:
        self.read += 1
        if result.ok:
            self.windows += result.n_windows
            self.seizure_windows += int(np.count_nonzero(result.n_pos))
        else:
            self.skipped += 1

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self, reused: int) -> str:
        return (
            f"scan: read {self.read:,} of {self.read + reused:,} files ({reused:,} unchanged, "
            f"not opened) in {self.elapsed:.1f} s, {self.rate:,.0f} files/s; in the files read: "
            f"{self.windows:,} windows, {self.seizure_windows:,} seizure windows, "
            f"{self.skipped:,} skipped"
        )


@contextmanager
def scan_progress(to_read: int) -> Iterator[tuple[ScanTally, Callable[[FileResult], None]]]:
    """A tally and the callback that feeds it; on a terminal (stderr) also a live bar.

    The bar (and its refresh thread) starts with the first result, once worker processes have
    been started: they are forked from a process without that thread.
    """
    tally = ScanTally(to_read)
    if not sys.stderr.isatty() or to_read == 0:
        yield tally, tally.add
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:,.0f} files/s"),
        TextColumn("windows {task.fields[windows]:,}"),
        TextColumn("seizure {task.fields[seizure]:,}"),
        TextColumn("skipped {task.fields[skipped]:,}"),
        TimeElapsedColumn(),
    ]
    bar = Progress(*columns, console=Console(stderr=True), transient=True)
    task = bar.add_task("scan", total=to_read, rate=0.0, windows=0, seizure=0, skipped=0)

    def advance(result: FileResult) -> None:
        if not bar.live.is_started:
            bar.start()
        tally.add(result)
        bar.update(
            task,
            advance=1,
            rate=tally.rate,
            windows=tally.windows,
            seizure=tally.seizure_windows,
            skipped=tally.skipped,
        )

    try:
        yield tally, advance
    finally:
        bar.stop()
