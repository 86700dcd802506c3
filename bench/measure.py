"""Timing helpers: medians and p99 of many runs, requests interleaved to share the noise."""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Timing:
    samples: list[float]  # seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000

    def row(self) -> str:
        return f"{self.median_ms:.2f} | {self.p99_ms:.2f} | {len(self.samples)}"


def time_calls(call: Callable[[], object], runs: int) -> Timing:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return Timing(samples)


def interleaved(
    client: httpx.Client, paths: Mapping[str, Sequence[str]], rounds: int
) -> dict[str, Timing]:
    """GET each named list of paths in turn, round after round; one Timing per name."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_number in range(rounds):
        for name, options in paths.items():
            path = options[round_number % len(options)]
            start = time.perf_counter()
            response = client.get(path)
            samples[name].append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    return {name: Timing(values) for name, values in samples.items()}


def wrk_requests_per_second(url: str, connections: int = 64, seconds: int = 10) -> float | None:
    """Requests/s from wrk on loopback (bounded in time); None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} errors on {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    return float(match.group(1)) if match else None
