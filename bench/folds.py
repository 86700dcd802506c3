"""The folds answer at scale: cold (first ask of a k and seed) and warm (served from memory).

    .venv/bin/python -m bench.folds                                  # 1M and 10M windows, SQLite
    .venv/bin/python -m bench.folds --backend postgres --record      # and write bench/RESULTS.md

The many-recordings shape: 70 windows a recording, so 10M windows are 142,857 recordings of
17,857 patients. Manifests and databases are made once under bench/data and reused. Each cold
sample asks another seed (a new answer and a new fold assignment); the warm samples repeat one
question, and the 304 samples send its ETag back. Only the section between the `folds` markers
of RESULTS.md is rewritten.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from bench.fixtures import (
    DATA,
    POSTGRES_ADMIN,
    cli,
    fresh_sqlite,
    log,
    machine,
    manifest,
    write_section,
)
from bench.measure import Timing
from tests.support.servers import LiveServer, serving

BEGIN, END = "<!-- folds:begin -->", "<!-- folds:end -->"
PER_RECORDING = 70


def manifest_of(windows: int) -> Path:
    return manifest(windows, 1, per_recording=PER_RECORDING)[0]


def database_of(windows: int, backend: str) -> str:
    """The database of that size, imported once (reused when it holds the dataset)."""
    if backend == "sqlite":
        path = DATA / f"folds-{windows}.db"
        url = f"sqlite:///{path}"
        if path.exists() and _sqlite_has_dataset(path):
            return url
        url = fresh_sqlite(path)
    else:
        from tests.support.postgres import create_database, database_url

        url = database_url(POSTGRES_ADMIN, f"seizure_stats_folds_{windows}")
        if _postgres_has_dataset(url):
            return url
        url = create_database(POSTGRES_ADMIN, f"seizure_stats_folds_{windows}", replace=True)
    cli(url, "db", "upgrade")
    log(f"{backend}: importing {windows:,} windows")
    seconds, _, _ = cli(url, "import", str(manifest_of(windows)), "--dataset", "large")
    log(f"{backend}: import took {seconds:.0f} s")
    return url


def _sqlite_has_dataset(path: Path) -> bool:
    try:
        with sqlite3.connect(path) as db:
            return bool(db.execute("select 1 from datasets where name = 'large'").fetchone())
    except sqlite3.Error:
        return False


def _postgres_has_dataset(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as db:
            return bool(db.execute("select 1 from datasets where name = 'large'").fetchone())
    except psycopg.Error:
        return False


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(base: str, pid: int, k: int, cold_runs: int, warm_runs: int) -> dict[str, Any]:
    """Cold samples (wall, and the server's CPU: on SQLite the queries' too), then warm ones."""
    path = "/api/v1/datasets/large/folds"
    with httpx.Client(base_url=base, timeout=600) as client:
        client.get("/api/v1/datasets/large/stats").raise_for_status()  # the process is up
        cold, cold_cpu = [], []
        for seed in range(cold_runs):
            start, cpu = time.perf_counter(), cpu_seconds(pid)
            response = client.get(path, params={"k": k, "seed": 1000 + seed})
            cold.append(time.perf_counter() - start)
            cold_cpu.append(cpu_seconds(pid) - cpu)
            response.raise_for_status()
        answer = response.json()
        warm, not_modified = [], []
        etag = response.headers["etag"]
        params = {"k": k, "seed": 1000 + cold_runs - 1}
        for _ in range(warm_runs):
            start = time.perf_counter()
            client.get(path, params=params).raise_for_status()
            warm.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = client.get(path, params=params, headers={"If-None-Match": etag})
            not_modified.append(time.perf_counter() - start)
            assert again.status_code == 304
        start = time.perf_counter()
        client.get("/api/v1/datasets/large/balanced").raise_for_status()
        balanced = time.perf_counter() - start
    return {
        "load": os.getloadavg()[0],
        "cold": Timing(cold),
        "cold_cpu": Timing(cold_cpu),
        "warm": Timing(warm),
        "not_modified": Timing(not_modified),
        "balanced": balanced,
        "patients": answer["patients"],
        "recordings": sum(f["test"]["recordings"] for f in answer["folds"]),
        "bytes": len(response.content),
    }


def report(rows: list[tuple[str, int, dict[str, Any]]], command: str, k: int) -> str:
    lines = [
        BEGIN,
        "## Folds",
        "",
        f"`{command}`, run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on "
        f"{machine()}. The many-recordings shape ({PER_RECORDING} windows a "
        f"recording); k={k}. Cold: the first ask of a seed (answer and fold assignment "
        "computed); warm: the same question again (served from memory); 304: its ETag sent "
        "back. One request at a time on one keep-alive connection; load average: the 1-minute "
        "load of the (shared, 2-core) machine after each size was measured. Times in ms; the "
        "server's CPU counts its own work and, on SQLite, the queries' (on Postgres they run "
        "in the database server).",
        "",
        "| backend | windows | recordings | patients | answer KiB | cold median (ms) | cold max "
        "| cold server CPU median | warm median | warm p99 | 304 median | cold / warm "
        "| whole-dataset /balanced (ms) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, windows, facts in rows:
        cold, warm, etag = facts["cold"], facts["warm"], facts["not_modified"]
        lines.append(
            f"| {backend} | {windows:,} | {facts['recordings']:,} | {facts['patients']:,} | "
            f"{facts['bytes'] / 1024:.0f} | {cold.median_ms:.0f} | {max(cold.samples) * 1000:.0f} "
            f"| {facts['cold_cpu'].median_ms:.0f} | {warm.median_ms:.2f} | {warm.p99_ms:.2f} | {etag.median_ms:.2f} | "
            f"{cold.median_ms / warm.median_ms:,.0f}x | {facts['balanced'] * 1000:.0f} | "
            f"{facts['load']:.1f} |"
        )
    lines += ["", END, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), nargs="+", default=["sqlite"])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--cold", type=int, default=5, help="cold samples (seeds) per size")
    parser.add_argument("--warm", type=int, default=200, help="warm samples per size")
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    rows = []
    for backend in args.backend:
        for windows in args.windows:
            url = database_of(windows, backend)
            server = LiveServer(
                url, DATA, {"SEIZURE_STATS_LOG_LEVEL": "WARNING"}, serve_options=("--workers", "1")
            )
            with serving(server) as ready:
                log(f"{backend}, {windows:,} windows: folds, k={args.k}")
                facts = measure(ready.url, ready.pid, args.k, args.cold, args.warm)
            log(
                f"cold median {facts['cold'].median_ms:.0f} ms, "
                f"warm median {facts['warm'].median_ms:.2f} ms"
            )
            rows.append((backend, windows, facts))
    command = "python -m bench.folds " + " ".join(
        [f"--windows {' '.join(map(str, args.windows))}", f"--backend {' '.join(args.backend)}"]
        + ([f"--k {args.k}"] if args.k != 10 else [])
    )
    section = report(rows, command, args.k)
    if args.record:
        write_section(section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
