"""Scan benchmark: the cache scanner against a straightforward single-process scan, same run.

    .venv/bin/python bench/scan_bench.py --files 300 --runs 3 --workers 2 --results bench/RESULTS.md

Builds (once, seeded) a TUSZ-like cache: most recordings seizure-free, a quarter with 1-3
seizures of 20-300 s, 5-60 min long, 60 s windows at a 10 s stride. `labels` is full size,
(n, 15360) float32; `windows` is stored as (n, 19, 16) float32 instead of (n, 19, 15360) to save
disk: no scanner reads it (the baseline's np.load and ours inflate only `labels`).

Timed, each `--runs` times, alternating, files in the page cache:
- baseline: one process, np.load(path)["labels"] per file, a Python loop over windows;
- scan: list + read (zlib-ng if installed) in a pool of `--workers` + assemble, no database;
- scan-zlib: the same with the standard library's zlib inflating (the fallback);
- end to end: `seizure-stats scan` into a fresh SQLite database, then the unchanged re-scan.
The scan's manifest is checked to equal the baseline's before anything is reported.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo import generate_recordings  # noqa: E402
from app.scan import npz  # noqa: E402
from app.scan.assembly import assemble  # noqa: E402
from app.scan.cache_reader import list_cache_dir, plan_scan, read_files  # noqa: E402
from app.scan.file_result import FileResult  # noqa: E402
from seizure_stats.labels import DEFAULT_FULL_THRESHOLD, Category  # noqa: E402

CATEGORIES = ("partial_seizure", "full_seizure", "no_seizure")


def build_cache(directory: Path, files: int, seed: int) -> None:
    marker = directory / ".complete"
    if marker.exists() and marker.read_text() == f"{files} {seed}":
        return
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.npz"):
        old.unlink()
    for recording in generate_recordings(files, seed=seed):
        windows = np.zeros((recording.n_windows, 19, 16), dtype=np.float32)
        np.savez_compressed(
            directory / recording.cache_file, windows=windows, labels=recording.labels()
        )
    marker.write_text(f"{files} {seed}")


def baseline(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """What a manifest script does today: every file in turn, every window in a loop."""
    manifest: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    for path in sorted(directory.glob("*_windows.npz")):
        labels = np.load(path)["labels"]
        for idx in range(labels.shape[0]):
            row = labels[idx]
            ratio = np.count_nonzero(row > 0) / len(row)
            if ratio == 0:
                category = "no_seizure"
            elif ratio >= DEFAULT_FULL_THRESHOLD:
                category = "full_seizure"
            else:
                category = "partial_seizure"
            manifest[category].append({"cache_file": path.name, "window_idx": idx})
    return manifest


def scan(directory: Path, workers: int) -> Any:
    listing = list_cache_dir(directory)
    plan = plan_scan(listing, {})
    return assemble(read_files(directory, plan.to_read, workers=workers), DEFAULT_FULL_THRESHOLD)


def _use_stdlib_zlib() -> None:
    npz.inflate_module = zlib


def scan_stdlib_zlib(directory: Path, workers: int) -> Any:
    """The scan with the fallback inflate: the same reader, in a pool told to use zlib."""
    listing = list_cache_dir(directory)
    tasks = [(str(directory / f.name), f.name, f.size, f.mtime_ns) for f in listing.scanned]
    context = multiprocessing.get_context("fork")  # as the scanner does on Linux
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    with context.Pool(workers, initializer=_use_stdlib_zlib) as pool:
        results: list[FileResult] = list(
            pool.imap_unordered(npz.read_cache_file, tasks, chunksize=chunksize)
        )
    return assemble(results, DEFAULT_FULL_THRESHOLD)


def as_plain(assembly: Any) -> dict[str, list[dict[str, Any]]]:
    parsed = assembly.parsed
    out: dict[str, list[dict[str, Any]]] = {}
    for category in Category:
        arrays = parsed.as_arrays(category)
        out[category.key] = [
            {"cache_file": parsed.recordings[r], "window_idx": w}
            for r, w in zip(
                arrays["recording"].tolist(), arrays["window_idx"].tolist(), strict=True
            )
        ]
    return out


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def end_to_end(directory: Path, workers: int) -> tuple[float, float]:
    """`seizure-stats scan` into a fresh SQLite database: first scan, then unchanged re-scan."""
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {"DATABASE_URL": f"sqlite:///{scratch}/bench.db"}
        cli = [sys.executable, "-m", "app"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        command = [*cli, "scan", str(directory), "--dataset", "bench", "--workers", str(workers)]
        first, _ = timed(lambda: subprocess.run(command, env=env, check=True, capture_output=True))
        again, _ = timed(lambda: subprocess.run(command, env=env, check=True, capture_output=True))
    return first, again


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        inflate = f"zlib-ng {version('zlib-ng')}" if npz.INFLATE == "zlib-ng" else "zlib"
    except Exception:
        inflate = npz.INFLATE
    return (
        f"{platform.system()} {platform.release()}, {model}, {os.cpu_count()} logical CPUs; "
        f"Python {platform.python_version()}, numpy {np.__version__}, {inflate}, "
        f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "scan-bench"
    )
    parser.add_argument(
        "--results", type=Path, help="Write the Scan section of this markdown file."
    )
    args = parser.parse_args()

    build_cache(args.cache_dir, args.files, args.seed)
    load_before = os.getloadavg()[0]
    files = sorted(args.cache_dir.glob("*_windows.npz"))
    size = sum(p.stat().st_size for p in files)
    reference = baseline(args.cache_dir)  # warms the page cache too
    windows = sum(len(v) for v in reference.values())
    assert as_plain(scan(args.cache_dir, args.workers)) == reference, "scan != baseline"
    assert as_plain(scan_stdlib_zlib(args.cache_dir, args.workers)) == reference

    times: dict[str, list[float]] = {"baseline": [], "scan": [], "scan-zlib": [], "scan-1": []}
    for _ in range(args.runs):
        times["baseline"].append(timed(lambda: baseline(args.cache_dir))[0])
        times["scan"].append(timed(lambda: scan(args.cache_dir, args.workers))[0])
        times["scan-zlib"].append(timed(lambda: scan_stdlib_zlib(args.cache_dir, args.workers))[0])
        times["scan-1"].append(timed(lambda: scan(args.cache_dir, 1))[0])
    first, again = end_to_end(args.cache_dir, args.workers)
    median = {name: statistics.median(values) for name, values in times.items()}
    load_after = os.getloadavg()[0]

    command = (
        f".venv/bin/python bench/scan_bench.py --files {args.files} --seed {args.seed} "
        f"--runs {args.runs} --workers {args.workers}"
    )
    w = args.workers
    rows = [
        ("baseline: 1 process, np.load, per-window loop", median["baseline"]),
        (
            f"scan, {w} workers (zlib-ng)" if npz.INFLATE == "zlib-ng" else f"scan, {w} workers",
            median["scan"],
        ),
        ("scan, 1 process, no pool", median["scan-1"]),
        (f"scan, {w} workers, stdlib zlib (fallback)", median["scan-zlib"]),
    ]
    lines = [
        "## Scan",
        "",
        f"Machine: {machine()}. One-minute load average {load_before:.1f} before the timed "
        f"runs and {load_after:.1f} after (the machine is shared: with other work running, "
        "worker processes do not get a core each).",
        "",
        f"Command: `{command} --results bench/RESULTS.md`",
        "",
        f"Cache: {len(files)} files, {windows:,} windows, {size / 1e6:.1f} MB on disk (labels "
        "full size, `windows` reduced to (n, 19, 16)); files in the page cache; seeded. "
        f"Medians of {args.runs} alternating runs; every scan's manifest equals the baseline's.",
        "",
        "| what | median s | files/s | vs baseline |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, seconds in rows:
        lines.append(
            f"| {label} | {seconds:.3f} | {len(files) / seconds:,.0f} | "
            f"{median['baseline'] / seconds:.1f}x |"
        )
    lines += [
        "",
        f"End to end, `seizure-stats scan --workers {w}` into a fresh SQLite database "
        f"(process start, imports, pool start, import of the snapshot): first scan "
        f"{first:.2f} s, unchanged re-scan (opens no NPZ file) {again:.2f} s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.results:
        write_section(args.results, text)


def write_section(path: Path, section: str) -> None:
    """Replace (or add) the `## Scan` section of a markdown file."""
    existing = path.read_text() if path.exists() else "# Benchmarks\n\n"
    before, marker, rest = existing.partition("## Scan\n")
    after = ""
    if marker:
        next_section = rest.find("\n## ")
        after = rest[next_section + 1 :] if next_section >= 0 else ""
    path.write_text(before.rstrip("\n") + "\n\n" + section + ("\n" + after if after else ""))


if __name__ == "__main__":
    main()
