"""The start of a sweep: N training jobs at the same instant, against a burst of the same shape
of /healthz in the same run, and what the server processes took for it.

Each job holds one keep-alive connection and asks, one after another, as the client's README
example does: its stats (its held-out patient excluded), its balanced counts and its balanced
index (`format=npz` as `balanced_index_arrays` asks, or gzip-compressed JSON lines as
`balanced_index` does), with its seed among `SEEDS` distinct seeds. The /healthz burst is
N connections x 3 requests in a row: what the server's HTTP handling alone costs at that
concurrency, so the ratio of the two p99s is what answering the jobs adds to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.traffic import Connection, Phase, timed

DATASET = "demo-train"
SEEDS = 8
INDEX_FORMATS = ("npz", "jsonl")
# What httpx, and so our client, sends unless told otherwise.
CLIENT_ENCODINGS = (("Accept-Encoding", "gzip, deflate"),)
# Connections are opened before the start, so the burst measures requests, not the handshakes
# of a thousand sockets (a sweep's jobs start on many machines, each with its own).
WARM_UP_SECONDS = 0.2

Job = Callable[[Connection, int], Awaitable[None]]


async def at_once(url: str, jobs: int, job: Job) -> float:
    """Run `jobs` jobs, each on its own connection, released together; the seconds they took."""
    start = asyncio.Event()

    async def one(k: int) -> None:
        connection = Connection(url)
        await start.wait()
        try:
            await job(connection, k)
        finally:
            await connection.close()

    tasks = [asyncio.create_task(one(k)) for k in range(jobs)]
    await asyncio.sleep(WARM_UP_SECONDS)
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started


async def sweep_burst(
    url: str, jobs: int, patients: list[str], index_format: str = "npz"
) -> list[Phase]:
    """Every job of a sweep at once: the jobs' phase ("burst"), then one phase per request."""
    kinds = {kind: Phase(f"burst: {kind}") for kind in ("stats", "balanced", "index")}
    base = f"/api/v1/datasets/{DATASET}"
    index_params: dict[str, object] = {"format": index_format} if index_format == "npz" else {}

    async def job(connection: Connection, k: int) -> None:
        held_out, seed = patients[k % len(patients)], k % SEEDS
        stats = {"exclude_patient": held_out}
        await timed(connection, kinds["stats"], "GET", f"{base}/stats", stats)
        await timed(connection, kinds["balanced"], "GET", f"{base}/balanced", {"seed": seed})
        path, params = f"{base}/balanced/index", {"seed": seed} | index_params
        await timed(connection, kinds["index"], "GET", path, params, headers=CLIENT_ENCODINGS)

    seconds = await at_once(url, jobs, job)
    whole = Phase("burst", seconds=seconds)
    for part in kinds.values():
        part.seconds = seconds
        whole.latencies += part.latencies
        whole.errors += part.errors
    return [whole, *kinds.values()]


async def health_burst(url: str, jobs: int) -> Phase:
    """The sweep burst's shape with nothing to compute: `jobs` connections x 3 /healthz."""
    phase = Phase("burst: /healthz")

    async def job(connection: Connection, _k: int) -> None:
        for _ in range(3):
            await timed(connection, phase, "GET", "/healthz")

    phase.seconds = await at_once(url, jobs, job)
    return phase


@dataclass(frozen=True)
class Memory:
    """The server's processes (uvicorn's supervisor and its workers) and their peak RSS."""

    processes: int
    peak_rss_bytes: int  # the sum of each process's own peak (VmHWM)

    @property
    def text(self) -> str:
        plural = "es" * (self.processes != 1)
        return f"{self.peak_rss_bytes / 1024**2:,.0f} MiB peak RSS over {self.processes} process{plural}"


def server_memory(pid: int) -> Memory:
    """Peak RSS of the process `pid` and all its descendants (Linux /proc)."""
    parents = dict(parent_pids())
    family = [pid]
    for member in family:  # grows as it is walked: children of children
        family += [child for child, parent in parents.items() if parent == member]
    return Memory(len(family), sum(vm_hwm_bytes(member) for member in family))


def parent_pids() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process."""
    pairs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
                continue
            # pid (comm) state ppid ...: comm may hold spaces and parentheses.
            pairs.append((int(entry.name), int(stat.rpartition(")")[2].split()[1])))
    return pairs


def vm_hwm_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # ended meanwhile
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def ratio_line(phases: list[Phase], workers: int | None, memory: Memory | None) -> str:
    """The goal's figure: the jobs' p99 over the /healthz burst's, with errors and resources."""
    by_name = {phase.name: phase for phase in phases}
    jobs, health = by_name["burst"], by_name["burst: /healthz"]
    ratio = jobs.percentile(99) / health.percentile(99)
    errors = len(jobs.errors) + len(health.errors)
    served = f"{workers} worker{'s' * (workers != 1)}" if workers else "the given service"
    used = f", {memory.text}" if memory else ""
    return (
        f"burst p99 {jobs.percentile(99):,.1f} ms / /healthz burst p99 "
        f"{health.percentile(99):,.1f} ms = {ratio:.2f}x, {errors} errors; {served}{used}"
    )
