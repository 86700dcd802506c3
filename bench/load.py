"""Bounded load on loopback: a start-of-sweep burst, then many clients for a while; zero errors.

Usage: python -m bench.load [--url URL] [--clients 200] [--duration 10] [--burst 200]
       [--large-windows 200000] [--storm 0] [--workers 1] [--index-format npz]
       [--phases burst,steady,neighbours,storm] [--record]

Without --url it starts its own service (`seizure-stats serve --workers N`) on a fresh SQLite
database in a temporary directory, loaded with the seeded demo dataset and two generated
snapshots of `--large-windows` windows each in the dataset `large` (`--database-url` to use
another database; it must be empty or hold those datasets). Then:

1. burst: `--burst` training jobs start at the same instant, as a hyper-parameter sweep does;
   each asks for its stats, its balanced counts and its balanced index, with 8 distinct seeds
   among them; then a burst of the same shape against /healthz (bench.burst). The goal: the
   jobs' p99 at most 3x the /healthz burst's, with no errors.
2. steady: `--clients` clients, each sending one request after another for `--duration` seconds:
   stats under varied filters (GET and POST), balanced counts, dataset and snapshot listings,
   now and then a balanced index.
3. neighbours: the same clients for as long again, while hostile neighbours run beside them:
   diffs and balanced indexes of the large snapshots, cold stats with long filters, and a slow
   client trickling a request a byte at a time. The hostile requests are counted apart: a 429
   (busy) is what they may get, not an error of the training jobs.
4. with `--storm N`: N diffs of the large snapshots at once, alone.

`--phases` runs only those named. In phases 2-4 a probe asks `/healthz` every 20 ms. Every
request is timed to its last byte. Any status other than 200, or a transport error, is an error
(for the hostile ones: anything but 200 or 429); the run exits non-zero if there was one.
`--record` writes the tables into the "Load" section of bench/RESULTS.md, or with the burst
alone into its "Sweep burst" section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import h11
import httpx

from bench import burst
from bench.generate import write_manifest
from bench.traffic import Connection, Phase, timed
from tests.support.servers import LiveServer, serving

DATASET = "demo-train"
LARGE = "large"
PROBE_INTERVAL = 0.02
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Load"
BURST_SECTION = "## Sweep burst"
PHASES = ("burst", "steady", "neighbours", "storm")


def patients_of(url: str) -> list[str]:
    response = httpx.get(f"{url}/api/v1/datasets/{DATASET}/recordings", timeout=30)
    response.raise_for_status()
    return sorted({r["patient"] for r in response.json()})


async def probe_health(url: str, phase: Phase, done: asyncio.Event) -> None:
    """Ask /healthz every PROBE_INTERVAL until `done`, as an orchestrator's health check does."""
    connection = Connection(url)
    while not done.is_set():
        started = time.perf_counter()
        try:
            status = await connection.request("GET", "/healthz")
        except (OSError, h11.ProtocolError) as exc:
            phase.errors.append(f"GET /healthz: {exc!r}")
            await connection.close()
        else:
            if status != 200:
                phase.errors.append(f"GET /healthz: {status}")
            phase.health.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL)
    await connection.close()


async def training_jobs(
    url: str, clients: int, duration: float, patients: list[str], phase: Phase
) -> None:
    """`clients` training jobs and dashboards, one request after another for `duration` s."""
    base = f"/api/v1/datasets/{DATASET}"
    deadline = time.perf_counter() + duration

    async def user(k: int) -> None:
        rng = random.Random(k)
        connection = Connection(url)
        while time.perf_counter() < deadline:
            roll = rng.random()
            chosen = rng.sample(patients, rng.randint(1, 5))
            if roll < 0.45:
                params = {"patient": chosen, "weighting": rng.choice(["sqrt", "linear"])}
                await timed(connection, phase, "GET", f"{base}/stats", params)
            elif roll < 0.6:
                body = {"exclude_patient": chosen, "category": ["seizure", "no_seizure"]}
                await timed(connection, phase, "POST", f"{base}/stats", json_body=body)
            elif roll < 0.8:
                await timed(connection, phase, "GET", f"{base}/balanced", {"seed": k % 16})
            elif roll < 0.9:
                await timed(connection, phase, "GET", "/api/v1/datasets")
            elif roll < 0.97:
                await timed(connection, phase, "GET", f"{base}/snapshots")
            else:
                await timed(connection, phase, "GET", f"{base}/balanced/index", {"seed": k % 4})
        await connection.close()

    await asyncio.gather(*(user(k) for k in range(clients)))


async def with_probe(url: str, phase: Phase, work: Awaitable[object]) -> Phase:
    done = asyncio.Event()
    probe = asyncio.create_task(probe_health(url, phase, done))
    started = time.perf_counter()
    await work
    phase.seconds = time.perf_counter() - started
    done.set()
    await probe
    return phase


async def steady(url: str, clients: int, duration: float, patients: list[str]) -> Phase:
    phase = Phase("steady")
    return await with_probe(url, phase, training_jobs(url, clients, duration, patients, phase))


def large_snapshots(url: str) -> tuple[int, int] | None:
    """The two oldest snapshots of the large dataset, if the service has it."""
    response = httpx.get(f"{url}/api/v1/datasets/{LARGE}/snapshots", timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    ids = sorted(s["id"] for s in response.json())
    return (ids[0], ids[1]) if len(ids) >= 2 else None


async def hostile(url: str, snapshots: tuple[int, int], duration: float, phase: Phase) -> None:
    """A few expensive requests over and over, and a slow client, for `duration` seconds."""
    base = f"/api/v1/datasets/{LARGE}"
    deadline = time.perf_counter() + duration
    a, b = snapshots

    async def neighbour(k: int) -> None:
        rng = random.Random(1000 + k)
        connection = Connection(url)
        while time.perf_counter() < deadline:
            kind = k % 3
            if kind == 0:
                first, second = (a, b) if rng.random() < 0.5 else (b, a)
                path = f"{base}/snapshots/{first}/diff/{second}"
                await timed(connection, phase, "GET", path, may_refuse=True)
            elif kind == 1:
                params = {"seed": rng.randrange(10**6)}
                path = f"{base}/balanced/index"
                await timed(connection, phase, "GET", path, params, may_refuse=True)
            else:  # never asked before: no answer in the cache
                names = [f"n{rng.randrange(10**12):012d}_{'x' * 40}" for _ in range(20_000)]
                body = {"recording": names}
                path = f"{base}/stats"
                await timed(connection, phase, "POST", path, json_body=body, may_refuse=True)
        await connection.close()

    async def slow_client() -> None:
        """A request line, then one header byte every 0.2 s: it holds a connection throughout."""
        _, writer = await asyncio.open_connection(*urlsplit(url).netloc.split(":"))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while time.perf_counter() < deadline:
            writer.write(b"s")
            with contextlib.suppress(OSError):
                await writer.drain()
            await asyncio.sleep(0.2)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    await asyncio.gather(*(neighbour(k) for k in range(6)), slow_client())


async def neighbours(
    url: str, clients: int, duration: float, patients: list[str], snapshots: tuple[int, int]
) -> tuple[Phase, Phase]:
    """Training jobs as in `steady` while hostile neighbours run: both phases, measured apart."""
    phase, hostile_phase = Phase("neighbours"), Phase("hostile")
    both = asyncio.gather(
        training_jobs(url, clients, duration, patients, phase),
        hostile(url, snapshots, duration, hostile_phase),
    )
    await with_probe(url, phase, both)
    hostile_phase.seconds = phase.seconds
    return phase, hostile_phase


async def storm(url: str, diffs: int, snapshots: tuple[int, int]) -> Phase:
    """`diffs` diffs of the large snapshots at once, nothing else: how long /healthz waits."""
    phase = Phase(f"storm of {diffs} diffs")
    path = f"/api/v1/datasets/{LARGE}/snapshots/{snapshots[0]}/diff/{snapshots[1]}"

    async def one() -> None:
        connection = Connection(url)
        await timed(connection, phase, "GET", path, may_refuse=True)
        await connection.close()

    return await with_probe(url, phase, asyncio.gather(*(one() for _ in range(diffs))))


@contextmanager
def own_server(
    database_url: str | None, large_windows: int = 0, workers: int = 1
) -> Iterator[LiveServer]:
    """A service of this run's own, with the demo (and large) datasets; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="seizure-stats-load-") as workdir:
        url_of_db = database_url or f"sqlite:///{Path(workdir) / 'load.db'}"
        env = os.environ | {"DATABASE_URL": url_of_db, "SEIZURE_STATS_LOG_LEVEL": "WARNING"}
        app = [sys.executable, "-m", "app"]
        subprocess.run([*app, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*app, "demo"], env=env, check=True, capture_output=True)
        for seed in (1, 2) if large_windows else ():
            manifest = Path(workdir) / f"large-{seed}.json"
            write_manifest(manifest, large_windows, seed, None)
            imported = [*app, "import", str(manifest), "--dataset", LARGE]
            subprocess.run(imported, env=env, check=True, capture_output=True)
            manifest.unlink()
        quiet = {"SEIZURE_STATS_LOG_LEVEL": "WARNING"}
        options = ["--workers", str(workers)]
        server = LiveServer(url_of_db, Path(workdir), quiet, serve_options=options)
        with serving(server) as ready:
            yield ready


def table(phases: list[Phase]) -> str:
    lines = [
        "| phase | requests | errors | 429 busy | seconds | req/s | p50 ms | p90 ms | p99 ms "
        "| max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        rate = p.requests / p.seconds if p.seconds else 0.0
        lines.append(
            f"| {p.name} | {p.requests:,} | {len(p.errors)} | {p.refused} | {p.seconds:.1f} | "
            f"{rate:,.0f} | {p.percentile(50):.1f} | {p.percentile(90):.1f} | "
            f"{p.percentile(99):.1f} | {p.percentile(100):.1f} |"
        )
    return "\n".join(lines)


def health_table(phases: list[Phase]) -> str:
    """The /healthz probes sent while each phase ran; nothing when no phase had any."""
    if not any(p.health for p in phases):
        return ""
    lines = [
        "| phase | /healthz probes | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for p in phases:
        if p.health:
            lines.append(
                f"| {p.name} | {len(p.health):,} | {p.percentile(50, p.health):.1f} | "
                f"{p.percentile(99, p.health):.1f} | {p.percentile(100, p.health):.1f} |"
            )
    return "\n".join(lines)


def record(text: str, section: str = SECTION) -> None:
    """Replace (or add, after the Load section) a section of RESULTS.md, leaving others alone."""
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    lines = existing.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == section), None)
    load = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None and load is not None:  # a new section goes where the Load section ends
        start = end = section_end(lines, load)
        text += "\n"
    elif start is None:
        start = end = len(lines)
        lines.append("")
    else:
        end = section_end(lines, start)
    lines = lines[:start] + text.splitlines() + [""] * (end < len(lines)) + lines[end:]
    RESULTS.write_text("\n".join(lines).rstrip("\n") + "\n")


def section_end(lines: list[str], start: int) -> int:
    """The next section after `start`, or the marker that opens one another tool writes."""
    return next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "<!-- "))),
        len(lines),
    )


@dataclass
class Run:
    """What one run asks for, and what it saw of the server."""

    clients: int
    duration: float
    jobs: int
    diffs: int
    phases: tuple[str, ...]
    index_format: str
    server_pid: int | None = None
    memory: burst.Memory | None = None


async def run(url: str, asked: Run) -> list[Phase]:
    patients = patients_of(url)
    phases: list[Phase] = []
    if "burst" in asked.phases:
        phases.append(await burst.health_burst(url, asked.jobs))
        phases[:0] = await burst.sweep_burst(url, asked.jobs, patients, asked.index_format)
        if asked.server_pid is not None:  # before later phases raise the peak
            asked.memory = burst.server_memory(asked.server_pid)
    if "steady" in asked.phases:
        phases.append(await steady(url, asked.clients, asked.duration, patients))
    snapshots = large_snapshots(url)
    if snapshots is not None and "neighbours" in asked.phases:
        phases += await neighbours(url, asked.clients, asked.duration, patients, snapshots)
    if snapshots is not None and "storm" in asked.phases and asked.diffs:
        phases.append(await storm(url, asked.diffs, snapshots))
    return phases


def phase_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = set(names) - set(PHASES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phases {sorted(unknown)}: choose from {PHASES}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="a running service holding the demo dataset")
    parser.add_argument("--database-url", help="for the service this run starts")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=200, help="training jobs starting at once")
    parser.add_argument(
        "--large-windows",
        type=int,
        default=200_000,
        help="windows of each large snapshot the hostile neighbours read (0: no neighbours)",
    )
    parser.add_argument("--storm", type=int, default=0, help="then N large diffs at once")
    parser.add_argument("--workers", type=int, default=1, help="of the service this run starts")
    parser.add_argument(
        "--index-format",
        choices=burst.INDEX_FORMATS,
        default="npz",
        help="the burst's index: npz (balanced_index_arrays) or gzipped JSON lines",
    )
    parser.add_argument(
        "--phases", type=phase_names, default=PHASES, help=f"comma-separated, of {PHASES}"
    )
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args(argv)

    asked = Run(args.clients, args.duration, args.burst, args.storm, args.phases, args.index_format)
    load_before = os.getloadavg()
    if args.url:
        phases = asyncio.run(run(args.url, asked))
    else:
        # The large snapshots are only read by the neighbours and the storm.
        large = args.large_windows if {"neighbours", "storm"} & set(args.phases) else 0
        with own_server(args.database_url, large, args.workers) as server:
            asked.server_pid = server.pid
            phases = asyncio.run(run(server.url, asked))
    load_after = os.getloadavg()
    result = f"{table(phases)}\n\n{health_table(phases)}".rstrip()
    if "burst" in args.phases:
        workers = None if args.url else args.workers
        result += "\n\n" + burst.ratio_line(phases, workers, asked.memory)
    print(result)
    errors = [e for p in phases for e in p.errors]
    for error in errors[:20]:
        print(f"error: {error}", file=sys.stderr)
    if args.record:
        machine = (
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
            f"{load_before[0]:.1f} before the run and {load_after[0]:.1f} after"
        )
        database = (
            "the given service" if args.url else (args.database_url or "SQLite").split(":")[0]
        )
        if args.phases == ("burst",):
            record(burst_text(args, machine, database, result), BURST_SECTION)
        else:
            record(load_text(args, machine, database, result))
    return 1 if errors else 0


def burst_text(args: argparse.Namespace, machine: str, database: str, result: str) -> str:
    return (
        f"{BURST_SECTION}\n\n"
        f"`python -m bench.load --phases burst --burst {args.burst} --workers {args.workers} "
        f"--index-format {args.index_format}` on {datetime.now(UTC):%Y-%m-%d} ({machine}; "
        f"{database}, the demo dataset; clients on the same machine over loopback).\n\n"
        f"{args.burst} training jobs start at once, each on its own keep-alive connection: "
        "stats (its held-out patient excluded), balanced counts, and the balanced index "
        f"({args.index_format}), {burst.SEEDS} distinct seeds among them. Then "
        f"{args.burst} connections × 3 `/healthz` in a row, the same shape with nothing to "
        "compute. The goal: the jobs' p99 at most 3× the `/healthz` burst's, no errors. "
        "Peak RSS is the sum of each server process's own peak (VmHWM), start-up included.\n\n"
        f"{result}\n"
    )


def load_text(args: argparse.Namespace, machine: str, database: str, result: str) -> str:
    workers = f"{args.workers} uvicorn worker{'s' * (args.workers != 1)}"
    return (
        f"{SECTION}\n\n"
        f"`python -m bench.load --clients {args.clients} --duration {args.duration:g} "
        f"--burst {args.burst} --large-windows {args.large_windows} --storm {args.storm} "
        f"--workers {args.workers}` "
        f"on {datetime.now(UTC):%Y-%m-%d} ({machine}; {workers} "
        f"on {database}, the demo dataset and two large snapshots of "
        f"{args.large_windows:,} windows; clients on the same machine over "
        "loopback). Latency is per request, to its last byte. The service shares the cores "
        "with the load generator (and with any other work the load "
        "average shows), so these are floors, not a capacity plan.\n\n"
        f"- burst: {args.burst} training jobs start at once; each asks for stats, balanced "
        f"counts, and its balanced index ({args.index_format}; 3 requests), "
        f"{burst.SEEDS} distinct seeds among them; then the same shape against `/healthz`.\n"
        f"- steady: {args.clients} clients send requests back to back for "
        f"{args.duration:g} s: stats (GET and POST, varied filters), balanced counts, "
        "listings, sometimes an index.\n"
        f"- neighbours: the same for {args.duration:g} s, while six hostile neighbours "
        "loop over diffs and balanced indexes of the large snapshots and cold stats with "
        "20,000-name filters, and a slow client trickles a request a byte every 0.2 s. "
        "The hostile row counts their requests apart; 429 busy is the answer they may get.\n"
        + (
            f"- storm: {args.storm} diffs of the large snapshots at once, nothing else.\n"
            if args.storm
            else ""
        )
        + "\n"
        "A probe asks `/healthz` every 20 ms in the later phases; the second table is what it "
        f"saw.\n\n{result}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
