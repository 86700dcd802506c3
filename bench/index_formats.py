"""How long a training job takes to get the balanced index into memory, by format.

    .venv/bin/python -m bench.index_formats                       # 1M and 10M windows, SQLite
    .venv/bin/python -m bench.index_formats --windows 1000000     # one size

Per size, one server, one dataset; each way is asked once cold (the selection computed, then
kept) and then `--rounds` times warm, interleaved so that the machine's noise falls on all alike:

- `jsonl, parsed per line`: what the client did before: JSON lines sent as they are, each
  line parsed into an IndexEntry (the baseline);
- `client.balanced_index`: the same lines gzip-compressed on the wire (the client accepts it);
- `client.balanced_index_arrays`: the npz columns, loaded by numpy.

Prints a Markdown table; bench/RESULTS.md keeps the one recorded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.fixtures import cli, log, manifest
from bench.servers import service
from seizure_stats.client import SeizureStatsClient
from seizure_stats.schemas.questions import IndexEntry

INDEX = "/api/v1/datasets/large/balanced/index"


def baseline(url: str) -> int:
    """The entries as the client read them before: plain JSON lines, parsed one by one."""
    entries = []
    headers = {"Accept-Encoding": "identity"}
    with httpx.stream("GET", url + INDEX, headers=headers, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.strip():
                entries.append(IndexEntry.model_validate_json(line))
    return len(entries)


def measure(ways: dict[str, Callable[[], int]], rounds: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, way in ways.items():
        start = time.perf_counter()
        entries = way()
        out[name] = {"cold": time.perf_counter() - start, "entries": entries}
    warm: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            warm[name].append(time.perf_counter() - start)
    for name, times in warm.items():
        out[name]["warm"] = statistics.median(times)
    return out


def run_size(windows: int, rounds: int, workdir: Path) -> dict[str, dict[str, float]]:
    path, _ = manifest(windows, 1)
    database = f"sqlite:///{workdir / f'index-{windows}.db'}"
    log(f"importing {windows:,} windows")
    cli(database, "db", "upgrade")
    cli(database, "import", str(path), "--dataset", "large")
    with service(database, workdir) as url, SeizureStatsClient(url, timeout=600) as client:
        ways: dict[str, Callable[[], int]] = {
            "jsonl, parsed per line (before)": lambda: baseline(url),
            "client.balanced_index (gzip)": lambda: sum(1 for _ in client.balanced_index("large")),
            "client.balanced_index_arrays (npz)": lambda: len(
                client.balanced_index_arrays("large")["window_idx"]
            ),
        }
        log(f"asking the index of {windows:,} windows")
        return measure(ways, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| windows | way | entries | cold s | warm s | warm, before / this |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for windows in args.windows:
            results = run_size(windows, args.rounds, Path(tmp))
            before = next(iter(results.values()))["warm"]
            for name, figures in results.items():
                print(
                    f"| {windows:,} | {name} | {int(figures['entries']):,} | "
                    f"{figures['cold']:.2f} | {figures['warm']:.3f} | "
                    f"{before / figures['warm']:.1f}× |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
