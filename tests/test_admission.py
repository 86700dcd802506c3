"""Heavy reads take turns: health and readiness answer at once whatever runs, excess heavy
requests get 429 busy with Retry-After, and every admitted answer is the one asked alone."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from app.api.admission import AdmissionGate
from app.db import make_engine, make_session_factory, run_write
from app.errors import BusyError
from app.ingest.importer import prepare_import, store_import
from bench.generate import write_manifest
from tests.support.servers import live_server

WINDOWS = 300_000  # per snapshot: a diff of two takes about a second here, alone
HEAVY_REQUESTS = 44  # more than the 40 worker threads and connections the service has
SLOTS, QUEUE = 2, 2
PROMPT_SECONDS = 1.0
# What the burst may add to the server's peak RSS: SLOTS computations at a time, and the
# admitted indexes while they are sent (without the gate: over 1 GiB, all at once).
PEAK_GROWTH_BOUND = 256 * 1024**2


@pytest.fixture
def large_snapshots(database_url: str, tmp_path: Path) -> tuple[int, int]:
    """Two snapshots of WINDOWS windows each in dataset `big`: their ids."""
    engine = make_engine(database_url)
    ids = []
    try:
        for seed in (1, 2):
            path = tmp_path / f"big-{seed}.json"
            write_manifest(path, WINDOWS, seed, None)
            with path.open("rb") as stream:
                factory = make_session_factory(engine)
                prepared = prepare_import(factory, "big", stream)
            outcome = run_write(factory, partial(store_import, prepared=prepared))
            ids.append(outcome.snapshot.id)
    finally:
        engine.dispose()
    return ids[0], ids[1]


def heavy_paths(a: int, b: int) -> list[str]:
    """HEAVY_REQUESTS different questions: the same question asked at once is computed once and
    takes no turn of its own (tests/test_single_flight.py), so each here differs from the rest."""
    base = "/api/v1/datasets/big"
    kinds = [
        lambda k: f"{base}/snapshots/{a}/diff/{b}?limit={100 + k}",
        lambda k: f"{base}/balanced/index?seed={k}",
        lambda k: f"{base}/breakdown?by=recording&limit={5 + k}",
        lambda k: f"{base}/snapshots/{b}/diff/{a}?limit={100 + k}",
    ]
    paths = [kinds[k % len(kinds)](k) for k in range(HEAVY_REQUESTS)]
    assert len(set(paths)) == HEAVY_REQUESTS
    return paths


def gate_metrics(url: str) -> dict[str, float]:
    """The gate's figures from /metrics: `seizure_stats_heavy_reads_<name> <value>` lines."""
    prefix = "seizure_stats_heavy_reads_"
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return {
        name.removeprefix(prefix): float(value)
        for name, value in (line.split() for line in lines if line.startswith(prefix))
    }


def probe(url: str, stop: threading.Event, slowest: dict[str, float]) -> None:
    """Ask /healthz and /readyz over and over; keep the slowest answer of each."""
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            for path in ("/healthz", "/readyz"):
                started = time.monotonic()
                response = client.get(f"{url}{path}")
                elapsed = time.monotonic() - started
                assert response.status_code == 200, response.text
                slowest[path] = max(slowest.get(path, 0.0), elapsed)
            time.sleep(0.05)


@pytest.mark.e2e
@pytest.mark.slow
def test_heavy_reads_take_turns_and_health_answers_at_once(
    database_url: str, tmp_path: Path, large_snapshots: tuple[int, int]
) -> None:
    env = {
        "SEIZURE_STATS_HEAVY_READ_SLOTS": str(SLOTS),
        "SEIZURE_STATS_HEAVY_READ_QUEUE": str(QUEUE),
        "SEIZURE_STATS_HEAVY_READ_WAIT_SECONDS": "120",
        "SEIZURE_STATS_LOG_LEVEL": "WARNING",
        # Nothing kept: each answer below, in the burst or asked alone after it, is computed.
        "SEIZURE_STATS_ANSWER_CACHE_ENTRIES": "0",
    }
    paths = heavy_paths(*large_snapshots)
    with live_server(database_url, tmp_path, env) as server:
        answers: list[httpx.Response | None] = [None] * len(paths)
        start = threading.Barrier(len(paths) + 1)

        def ask(k: int) -> None:
            with httpx.Client(timeout=180) as client:
                start.wait()
                answers[k] = client.get(f"{server.url}{paths[k]}")

        baseline_rss = server.peak_rss_bytes()
        slowest: dict[str, float] = {}
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(server.url, stop, slowest))
        askers = [threading.Thread(target=ask, args=(k,)) for k in range(len(paths))]
        for thread in askers:
            thread.start()
        prober.start()
        start.wait()
        for thread in askers:
            thread.join(timeout=300)
        stop.set()
        prober.join(timeout=60)

        assert slowest["/healthz"] < PROMPT_SECONDS, slowest
        assert slowest["/readyz"] < PROMPT_SECONDS, slowest
        grown = server.peak_rss_bytes() - baseline_rss
        assert grown < PEAK_GROWTH_BOUND, f"peak RSS grew by {grown / 2**20:.0f} MiB"
        statuses = [response.status_code if response else 0 for response in answers]
        assert set(statuses) <= {200, 429}, statuses
        # SLOTS ran and QUEUE waited; how many more were admitted depends on how the burst's
        # arrivals spread past the first answers, so the gate's own count says the rest.
        assert statuses.count(200) >= SLOTS + QUEUE, statuses
        assert statuses.count(429) >= 1, statuses
        gate = gate_metrics(server.url)
        assert gate == {
            "running": 0.0,
            "waiting": 0.0,
            "running_peak": float(SLOTS),
            "refused_total": float(statuses.count(429)),
        }
        for response in answers:
            assert response is not None
            if response.status_code == 429:
                assert response.json()["error"] == "busy", response.text
                assert response.headers["retry-after"] == "120"

        admitted = [(path, r) for path, r in zip(paths, answers, strict=True) if r and r.is_success]
        with httpx.Client(timeout=180) as client:
            for path, response in admitted:
                alone = client.get(f"{server.url}{path}")
                assert alone.status_code == 200, alone.text
                assert response.content == alone.content, path


def test_the_gate_refuses_past_its_queue_and_after_its_wait() -> None:
    async def scenario() -> list[str]:
        gate = AdmissionGate(slots=1, queue=1, wait_seconds=0.5, min_windows=10)
        release = threading.Event()
        outcomes: list[str] = []

        async def heavy(name: str) -> None:
            try:
                outcomes.append(await gate.run(lambda: release.wait(5) and name))
            except BusyError as exc:
                outcomes.append(f"busy: {name}, retry after {exc.headers}")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(heavy, "first")
            await anyio.sleep(0.05)
            assert (gate.running, gate.waiting) == (1, 0)
            tasks.start_soon(heavy, "second")  # waits, and gives up after 0.5 s
            await anyio.sleep(0.05)
            tasks.start_soon(heavy, "third")  # the queue is full: refused at once
            await anyio.sleep(0.05)
            assert outcomes == ["busy: third, retry after {'Retry-After': '1'}"]
            await anyio.sleep(0.6)
            assert outcomes == [
                "busy: third, retry after {'Retry-After': '1'}",
                "busy: second, retry after {'Retry-After': '1'}",
            ]
            tasks.start_soon(heavy, "fourth")  # waits for the first
            await anyio.sleep(0.05)
            release.set()
        return outcomes

    assert anyio.run(scenario) == [
        "busy: third, retry after {'Retry-After': '1'}",
        "busy: second, retry after {'Retry-After': '1'}",
        "first",
        "fourth",
    ]
    gate = AdmissionGate(slots=1, queue=1, wait_seconds=0.5, min_windows=10)
    assert (gate.is_heavy(9), gate.is_heavy(10)) == (False, True)
