"""The scale benchmark: generate, import, ask, compare with peers, write bench/RESULTS.md.

    scripts/setup bench && .venv/bin/python -m bench.run            # 10M and 330k windows
    .venv/bin/python -m bench.run --windows 1000000 --rounds 100      # a quicker pass

Everything runs on loopback in one go, so every ratio compares numbers measured side by side
on the same (noisy) machine. Only the section between the `scale` markers of RESULTS.md is
rewritten.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.fixtures import (
    DATA,
    HERE,
    cli,
    fresh_postgres,
    fresh_sqlite,
    log,
    machine,
    manifest,
    postgres_version,
    verdict,
    write_section,
)
from bench.measure import Timing, interleaved, time_calls, wrk_requests_per_second
from bench.peers import datasette_sql, duckdb_sql, write_parquet
from bench.servers import datasette, service

BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


# -- questions ------------------------------------------------------------------------------------


def recording_names(sqlite_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(sqlite_path) as db:
        return db.execute(
            "select cache_file, patient, session from recordings r join datasets d "
            "on d.id = r.dataset_id where d.name = 'large' order by cache_file"
        ).fetchall()


def filter_sets(
    names: list[tuple[str, str, str]], count: int, seed: int
) -> dict[str, list[dict[str, list[str]]]]:
    """`count` distinct filters of each kind (the first of each is the warm one)."""
    rng = random.Random(seed)
    patients = sorted({p for _, p, _ in names})
    sessions = sorted({s for _, _, s in names if s})
    files = [f for f, _, _ in names]
    return {
        "patient": [{"patient": rng.sample(patients, 3)} for _ in range(count)],
        "exclude_patient": [{"exclude_patient": rng.sample(patients, 2)} for _ in range(count)],
        "session": [
            {"session": [rng.choice(sessions)], "patient": rng.sample(patients, 20)}
            for _ in range(count)
        ],
        "recording": [{"recording": rng.sample(files, 50)} for _ in range(count)],
        "category": [
            {"category": ["seizure"], "exclude_patient": rng.sample(patients, 1)}
            for _ in range(count)
        ],
    }


def stats_path(filters: dict[str, list[str]]) -> str:
    params = [(k, ",".join(v)) for k, v in filters.items()]
    return "/api/v1/datasets/large/stats?" + urlencode(params)


def measure_service(
    url: str, filters: dict[str, list[dict[str, list[str]]]], rounds: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        # One request warms the process (imports, compiled statements) before anything is timed.
        client.get("/api/v1/datasets/large/stats?patient=warm-up").raise_for_status()
        # First answers: every request a filter never asked before, so nothing is cached.
        first: dict[str, Timing] = {}
        for kind, options in filters.items():
            paths = [stats_path(f) for f in options[1:]]
            first[kind] = interleaved(client, {kind: paths}, len(paths))[kind]
        out["first"] = first
        # Warm answers, interleaved with the trivial endpoint.
        warm_paths = {"healthz": ["/healthz"]} | {k: [stats_path(v[0])] for k, v in filters.items()}
        interleaved(client, warm_paths, 20)  # warm-up
        out["warm"] = interleaved(client, warm_paths, rounds)

        # The balanced index of the 330k-window dataset, streamed in full.
        def index() -> None:
            with client.stream("GET", "/api/v1/datasets/small/balanced/index") as response:
                response.raise_for_status()
                for _ in response.iter_raw():
                    pass

        out["index"] = time_calls(index, 15)
        out["index_windows"] = client.get("/api/v1/datasets/small/balanced").json()["counts"][
            "total"
        ]
    return out


def measure_throughput(
    url: str, warm_filter: dict[str, list[str]], seconds: int
) -> dict[str, float | None]:
    return {
        "healthz": wrk_requests_per_second(url + "/healthz", seconds=seconds),
        "stats": wrk_requests_per_second(url + stats_path(warm_filter), seconds=seconds),
    }


def measure_peer_datasette(
    url: str, filters: dict[str, list[dict[str, list[str]]]], runs: int
) -> dict[str, Timing]:
    out = {}
    with httpx.Client(base_url=url, timeout=600) as client:
        for kind, options in filters.items():
            sql = datasette_sql(options[0], 1)
            path = "/bench.json?" + urlencode({"sql": sql, "_shape": "array"})
            out[kind] = interleaved(client, {kind: [path]}, runs)[kind]
    return out


def measure_peer_duckdb(
    parquet: Path, filters: dict[str, list[dict[str, list[str]]]], runs: int
) -> dict[str, Timing]:
    import duckdb

    connection = duckdb.connect()

    def query(sql: str) -> Callable[[], object]:
        return lambda: connection.execute(sql).fetchall()

    return {
        kind: time_calls(query(duckdb_sql(parquet, options[0])), runs)
        for kind, options in filters.items()
    }


# -- the training job's start-up ----------------------------------------------------------------------


def startup(url: str, manifest_path: Path, cache_dir: Path, runs: int) -> dict[str, Any]:
    """Time both ways of starting a job; count file-system calls under the cache dir with strace."""

    def run(args: list[str], traced: bool) -> tuple[dict[str, Any], int | None]:
        command = [sys.executable, "-m", "bench.startup", *args]
        trace_file = DATA / "startup.strace"
        if traced:
            command = ["strace", "-f", "-qq", "-e", "trace=%file", "-o", str(trace_file), *command]
        result = subprocess.run(
            command, capture_output=True, text=True, check=True, cwd=HERE.parent
        )
        calls = None
        if traced:
            calls = sum(str(cache_dir) in line for line in trace_file.read_text().splitlines())
        return json.loads(result.stdout.strip().splitlines()[-1]), calls

    service_args = ["service", "--url", url, "--dataset", "small"]
    old_args = ["old", "--manifest", str(manifest_path), "--cache-dir", str(cache_dir)]
    out: dict[str, Any] = {
        "service": Timing([run(service_args, False)[0]["seconds"] for _ in range(runs)]),
        "old": Timing([run(old_args, False)[0]["seconds"] for _ in range(runs)]),
    }
    if shutil.which("strace"):
        service_result, service_calls = run(service_args, True)
        old_result, old_calls = run(old_args, True)
        out |= {
            "service_calls": service_calls,
            "old_calls": old_calls,
            "same_weight": service_result["pos_weight"] == old_result["pos_weight"],
            "same_windows": service_result["windows"] == old_result["windows"],
            "pos_weight": service_result["pos_weight"],
            "windows": service_result["windows"],
        }
    return out


# -- report ------------------------------------------------------------------------------------------


def report(args: argparse.Namespace, facts: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Scale",
        "",
        f"Command: `{facts['command']}` — run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine()}; PostgreSQL {facts['postgres_version']}.",
        f"Data: {args.windows:,} windows ({facts['large_recordings']:,} recordings, seed {args.seed}) and "
        f"{args.small:,} windows for the balanced index and start-up. Each latency is a median and "
        "p99 over many requests on one keep-alive connection, interleaved with `/healthz`.",
        "",
        "### Import",
        "",
        "| backend | windows | seconds | peak RSS (MiB) | target |",
        "|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        seconds, rss = facts[backend]["import"]
        ok = seconds <= 60 and rss <= 512
        lines.append(
            f"| {backend} | {args.windows:,} | {seconds:.1f} | {rss} | ≤ 60 s, ≤ 512 MiB: {verdict(ok)} |"
        )
    lines += ["", "### Stats latency (ms)", ""]
    lines += [
        "| backend | filter | warm median | warm p99 | warm / healthz | first-answer median | first-answer p99 | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        measured = facts[backend]["service"]
        healthz = measured["warm"]["healthz"]
        lines.append(
            f"| {backend} | `/healthz` | {healthz.median_ms:.2f} | {healthz.p99_ms:.2f} | 1.00 | | | |"
        )
        for kind, first in measured["first"].items():
            warm = measured["warm"][kind]
            ratio = warm.median_ms / healthz.median_ms
            ok = ratio <= 1.5 and first.p99_ms <= 50
            lines.append(
                f"| {backend} | {kind} | {warm.median_ms:.2f} | {warm.p99_ms:.2f} | {ratio:.2f} | "
                f"{first.median_ms:.2f} | {first.p99_ms:.2f} | ≤ 1.5×, ≤ 50 ms: {verdict(ok)} |"
            )
    lines += [
        "",
        "### Balanced index",
        "",
        "| backend | windows kept | median s | p99 s | target |",
        "|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        measured = facts[backend]["service"]
        index = measured["index"]
        lines.append(
            f"| {backend} | {measured['index_windows']:,} of {args.small:,} | {index.median_ms / 1000:.3f} | "
            f"{index.p99_ms / 1000:.3f} | < 1 s: {verdict(index.p99_ms < 1000)} |"
        )
    lines += [
        "",
        "### Throughput (wrk, 64 connections, 10 s, loopback)",
        "",
        f"Server: `seizure-stats serve --workers {args.workers}` (the recommendation for 2 cores).",
        "",
        "| backend | `/healthz` req/s | warm stats req/s | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        rates = facts[backend]["throughput"]
        if rates["healthz"] and rates["stats"]:
            ratio = rates["stats"] / rates["healthz"]
            lines.append(
                f"| {backend} | {rates['healthz']:.0f} | {rates['stats']:.0f} | {ratio:.2f} | ≥ 0.5: {verdict(ratio >= 0.5)} |"
            )
        else:
            lines.append(f"| {backend} | — | — | — | wrk not installed |")
    lines += [
        "",
        "### Peers, same filters (ms)",
        "",
        "Datasette 0.65 runs the category counts as SQL over the same SQLite file; DuckDB "
        "counts over a Parquet copy of the same windows (one row per window with its names).",
        "",
        "| filter | service warm (SQLite) | service first answer (SQLite) | Datasette median | DuckDB median |",
        "|---|---|---|---|---|",
    ]
    for kind in facts["peers"]["datasette"]:
        ours = facts["sqlite"]["service"]
        lines.append(
            f"| {kind} | {ours['warm'][kind].median_ms:.2f} | {ours['first'][kind].median_ms:.2f} | "
            f"{facts['peers']['datasette'][kind].median_ms:.1f} | {facts['peers']['duckdb'][kind].median_ms:.1f} |"
        )
    start = facts["startup"]
    lines += [
        "",
        "### A training job's start-up",
        "",
        f"`python -m bench.startup service` (pos_weight and the balanced index from the service) "
        f"against `python -m bench.startup old` (load manifest.json, check each drawn file exists, "
        f"draw, compute) on the {args.small:,}-window dataset, whole processes, {len(start['service'].samples)} runs each.",
        "",
        "| way | median s | p99 s | file-system calls under the cache directory (strace) |",
        "|---|---|---|---|",
        f"| service | {start['service'].median_ms / 1000:.3f} | {start['service'].p99_ms / 1000:.3f} | {start.get('service_calls', 'n/a')} |",
        f"| old in-process | {start['old'].median_ms / 1000:.3f} | {start['old'].p99_ms / 1000:.3f} | {start.get('old_calls', 'n/a')} |",
        "",
    ]
    if "same_weight" in start:
        lines.append(
            f"Both ways agree: pos_weight {start['pos_weight']:.6f} (identical: {start['same_weight']}), "
            f"{start['windows']:,} windows (identical: {start['same_windows']}). On local disk an existence "
            "check costs microseconds; on network storage each costs a round trip, which the service way never makes."
        )
    lines += ["", END]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=330_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=300, help="warm requests per filter")
    parser.add_argument("--first", type=int, default=100, help="first-answer requests per filter")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    facts: dict[str, Any] = {"command": "python -m bench.run " + " ".join(sys.argv[1:])}

    large, _ = manifest(args.windows, args.seed, with_cache_dir=False)
    small, small_cache = manifest(args.small, args.seed + 1, with_cache_dir=True)
    assert small_cache is not None

    sqlite_path = DATA / "bench.db"
    urls = {"sqlite": fresh_sqlite(sqlite_path), "postgres": fresh_postgres()}
    facts["postgres_version"] = postgres_version()

    for backend, url in urls.items():
        cli(url, "db", "upgrade")
        log(f"{backend}: importing {args.windows:,} windows")
        seconds, rss, _ = cli(url, "import", str(large), "--dataset", "large")
        cli(url, "import", str(small), "--dataset", "small", "--cache-dir", str(small_cache))
        facts[backend] = {"import": (seconds, rss)}
        log(f"{backend}: import took {seconds:.1f} s, peak {rss} MiB")

    names = recording_names(sqlite_path)
    facts["large_recordings"] = len(names)
    filters = filter_sets(names, args.first + 1, args.seed)

    for backend, url in urls.items():
        with service(url, DATA, workers=args.workers) as base:
            log(f"{backend}: latency")
            facts[backend]["service"] = measure_service(base, filters, args.rounds)
            log(f"{backend}: throughput")
            facts[backend]["throughput"] = measure_throughput(
                base, filters["patient"][0], args.wrk_seconds
            )
            if backend == "sqlite":
                log("training-job start-up")
                facts["startup"] = startup(base, small, small_cache, runs=5)

    log("peers: Datasette and DuckDB")
    parquet = DATA / "windows.parquet"
    write_parquet(sqlite_path, 1, parquet)
    peer_runs = max(3, args.rounds // 60)
    with datasette(sqlite_path, DATA) as base:
        datasette_times = measure_peer_datasette(base, filters, peer_runs)
    facts["peers"] = {
        "datasette": datasette_times,
        "duckdb": measure_peer_duckdb(parquet, filters, peer_runs * 4),
    }

    section = report(args, facts)
    write_section(section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
