"""Growth: how the cost of a first answer, balanced counts, the index and the import follow size.

    .venv/bin/python -m bench.growth --backend sqlite postgres --record    # all sizes, ~25 min
    .venv/bin/python -m bench.growth --sizes 100000 200000                 # a quick pass

A size is WINDOWS (70 windows a recording, the many-recordings shape: 142,857 recordings at
10M) or WINDOWS/PER for another shape (10000000/330: 30,303 recordings). Per size and backend:
a fresh database, the import timed as a process of its own (wall time, peak RSS), then a server
with its answer cache off (SEIZURE_STATS_ANSWER_CACHE_ENTRIES=0: nothing is kept, so every
request is a first answer) asked six questions of the issue round after round, interleaved
with /healthz on one keep-alive connection, each request naming fresh seeded names; cold
/balanced and the cold npz index the same way; then a server with its cache on for the index
served from memory. Manifests are generated once into bench/data; only the section between
the `growth` markers of RESULTS.md is rewritten (with --record).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.fixtures import (
    DATA,
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
from bench.measure import Timing, interleaved, time_calls
from bench.servers import service
from seizure_stats.client import SeizureStatsClient

BEGIN, END = "<!-- growth:begin -->", "<!-- growth:end -->"
DATASET = "/api/v1/datasets/large"
SIZES = ("100000", "200000", "1000000", "10000000", "10000000/330")
QUESTIONS = ("whole", "patient", "exclude 5", "category", "session", "50 recordings")
CACHE_OFF = {"SEIZURE_STATS_ANSWER_CACHE_ENTRIES": "0"}
WARM_UP = 3  # rounds before timing: the process's imports and compiled statements, not data
GOAL_MS, GOAL_RATIO = 10.0, 2.0


@dataclass(frozen=True, order=True)
class Size:
    windows: int
    per_recording: int = 70

    @classmethod
    def parse(cls, text: str) -> Size:
        windows, _, per = text.partition("/")
        return cls(int(windows), int(per or 70))

    @property
    def recordings(self) -> int:
        return max(1, self.windows // self.per_recording)


def stats_path(**filters: Sequence[str]) -> str:
    query = urlencode([(name, ",".join(values)) for name, values in filters.items()])
    return f"{DATASET}/stats" + (f"?{query}" if query else "")


def questions(recordings: list[dict[str, Any]], count: int, seed: int) -> dict[str, list[str]]:
    """Per shape, `count` distinct questions (the whole dataset and the category are one each:
    with the cache off, asking them again is a first answer all the same)."""
    rng = random.Random(seed)
    patients = sorted({r["patient"] for r in recordings})
    sessions = sorted({f"{r['patient']}_{r['session']}" for r in recordings if r["session"]})
    files = [r["cache_file"] for r in recordings]

    def distinct(names: list[str]) -> list[str]:
        return rng.sample(names, count) if len(names) >= count else rng.choices(names, k=count)

    return {
        "whole": [stats_path()],
        "patient": [stats_path(patient=[p]) for p in distinct(patients)],
        "exclude 5": [stats_path(exclude_patient=rng.sample(patients, 5)) for _ in range(count)],
        "category": [stats_path(category=["seizure"])],
        "session": [stats_path(session=[s]) for s in distinct(sessions)],
        "50 recordings": [stats_path(recording=rng.sample(files, 50)) for _ in range(count)],
    }


def index_of(client: SeizureStatsClient, seed: int) -> int:
    return len(client.balanced_index_arrays("large", seed=seed)["window_idx"])


def measure_cold(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """A server with its answer cache off: every request computes its answer."""
    with httpx.Client(base_url=url, timeout=600) as http:
        recordings = http.get(f"{DATASET}/recordings").raise_for_status().json()
        asked = questions(recordings, args.first + WARM_UP, args.seed)
        interleaved(http, {k: v[args.first :] or v for k, v in asked.items()}, WARM_UP)
        timed = {"healthz": ["/healthz"]} | {k: v[: args.first] for k, v in asked.items()}
        out: dict[str, Any] = interleaved(http, timed, args.first)
        seeds = range(100, 100 + args.balanced)
        balanced = [f"{DATASET}/balanced?seed={s}" for s in seeds]
        out["balanced"] = interleaved(http, {"b": balanced}, len(balanced))["b"]
    with SeizureStatsClient(url, timeout=600, cache=False) as client:
        seed = iter(range(1000, 2000))
        out["index cold"] = time_calls(lambda: index_of(client, next(seed)), args.index)
    out["patients"] = len({r["patient"] for r in recordings})
    out["recordings"] = len(recordings)
    return out


def measure_warm(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """A server with its cache on: the index kept as bytes after its first answer."""
    with SeizureStatsClient(url, timeout=600, cache=False) as client:
        entries = index_of(client, 1)
        index = time_calls(lambda: index_of(client, 1), args.index_warm)
    with httpx.Client(base_url=url, timeout=600) as http:
        http.get(stats_path()).raise_for_status()
        whole = interleaved(http, {"whole": [stats_path()]}, 20)["whole"]
    return {"index warm": index, "whole, cached": whole, "entries": entries}


def run_size(backend: str, size: Size, args: argparse.Namespace) -> dict[str, Any]:
    path, _ = manifest(size.windows, args.seed, per_recording=size.per_recording)
    if backend == "sqlite":
        url = fresh_sqlite(DATA / "growth.db")
    else:
        url = fresh_postgres("seizure_stats_growth")
    cli(url, "db", "upgrade")
    log(f"{backend}: importing {size.windows:,} windows ({size.recordings:,} recordings)")
    seconds, rss, _ = cli(url, "import", str(path), "--dataset", "large")
    log(f"{backend}: import {seconds:.1f} s, peak {rss} MiB; first answers")
    with service(url, DATA, env=CACHE_OFF) as base:
        facts = measure_cold(base, args)
    with service(url, DATA) as base:
        facts |= measure_warm(base, args)
    log(f"{backend}: whole dataset p99 {facts['whole'].p99_ms:.1f} ms")
    return facts | {"import s": seconds, "import MiB": rss, "load": os.getloadavg()[0]}


# -- report ----------------------------------------------------------------------------------------


def ms(timing: Timing) -> str:
    return f"{timing.p99_ms:.1f}"


def table(rows: list[tuple[str, Size, dict[str, Any]]]) -> list[str]:
    lines = [
        "| backend | windows | recordings | import s | import peak MiB | "
        + " | ".join(f"{q} p99" for q in QUESTIONS)
        + " | `/healthz` p99 | balanced cold median (max) | index cold median | index warm median "
        "| index entries | load |",
        "|---|---:|---:|---:|---:|" + "---:|" * (len(QUESTIONS) + 6),
    ]
    for backend, size, f in rows:
        balanced = f["balanced"]
        lines.append(
            f"| {backend} | {size.windows:,} | {f['recordings']:,} | {f['import s']:.1f} | "
            f"{f['import MiB']} | "
            + " | ".join(ms(f[q]) for q in QUESTIONS)
            + f" | {ms(f['healthz'])} | {balanced.median_ms:.0f} ({max(balanced.samples) * 1000:.0f}) | "
            f"{f['index cold'].median_ms:.0f} | {f['index warm'].median_ms:.1f} | "
            f"{f['entries']:,} | {f['load']:.1f} |"
        )
    return lines


def ratio(a: Timing, b: Timing) -> str:
    return f"{a.p99_ms / b.p99_ms:.2f}×"


def computed(backend: str, found: dict[Size, dict[str, Any]]) -> list[str]:
    """The goals' ratios and figures, for the sizes this run measured."""
    many = sorted(s for s in found if s.per_recording == 70)
    lines: list[str] = []
    if not many:
        return lines
    top = many[-1]
    base = Size(200_000) if Size(200_000) in found and top.windows > 200_000 else many[0]
    if top != base:
        parts = [f"{q} {ratio(found[top][q], found[base][q])}" for q in QUESTIONS]
        worst = max(found[top][q].p99_ms / found[base][q].p99_ms for q in QUESTIONS)
        lines.append(
            f"- {backend}: first-answer p99 at {top.windows:,} / at {base.windows:,} windows: "
            + ", ".join(parts)
            + f" (goal ≤ {GOAL_RATIO:.0f}×: {verdict(worst <= GOAL_RATIO)})."
        )
    slow = [f"{q} {found[top][q].p99_ms:.1f} ms" for q in QUESTIONS]
    within = all(found[top][q].p99_ms <= GOAL_MS for q in QUESTIONS)
    lines.append(
        f"- {backend}: first-answer p99 at {top.windows:,} windows ({found[top]['recordings']:,} "
        f"recordings): {', '.join(slow)} (goal ≤ {GOAL_MS:.0f} ms each: {verdict(within)})."
    )
    for wide in (s for s in found if s.per_recording != 70 and Size(s.windows) in found):
        a, b = found[Size(wide.windows)], found[wide]
        parts = [f"{q} {ratio(a[q], b[q])}" for q in QUESTIONS]
        parts += [
            f"balanced {a['balanced'].median_ms / b['balanced'].median_ms:.2f}×",
            f"index cold {a['index cold'].median_ms / b['index cold'].median_ms:.2f}×",
            f"import {a['import s'] / b['import s']:.2f}× time, "
            f"{a['import MiB'] / b['import MiB']:.2f}× memory",
        ]
        lines.append(
            f"- {backend}: {wide.windows:,} windows in {a['recordings']:,} against "
            f"{b['recordings']:,} recordings (p99, 70 a recording / {wide.per_recording}): "
            + ", ".join(parts)
            + "."
        )
    for size, f in found.items():
        again, cached = f["whole"].median_ms, f["whole, cached"].median_ms
        lines.append(
            f"- {backend}, {size.windows:,} windows / {size.per_recording}: the whole-dataset "
            f"question asked again, cache off {again:.2f} ms median, cache on {cached:.2f} ms."
        )
    return lines


def report(rows: list[tuple[str, Size, dict[str, Any]]], args: argparse.Namespace) -> str:
    backends = dict.fromkeys(backend for backend, _, _ in rows)
    versions = f"; PostgreSQL {postgres_version()}" if "postgres" in backends else ""
    lines = [
        BEGIN,
        "## Growth",
        "",
        f"`{args.command}`, run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on "
        f"{machine()}{versions}; load average {args.load_at_start:.1f} at the start "
        f"(last column: after each size). {args.minutes:.0f} minutes in all.",
        "",
        f"First answers (ms, p99 of {args.first} requests per shape, each a question never asked, "
        "the server's answer cache off, one worker), interleaved with `/healthz` on one "
        "keep-alive connection: the whole dataset; one patient; five patients excluded; "
        "`category=seizure`; one patient's session (`PATIENT_sNNN`); 50 recordings by cache "
        f"file. Balanced: the whole dataset's `/balanced`, {args.balanced} seeds, cache off. "
        f"Index: `client.balanced_index_arrays` (npz, into numpy), cold ({args.index} seeds, "
        f"cache off) and warm ({args.index_warm} times, served from the cache); ms. "
        "Import: `seizure-stats import` as a process of its own into a fresh database.",
        "",
        *table(rows),
        "",
    ]
    for backend in backends:
        lines += computed(backend, {size: f for b, size, f in rows if b == backend})
    lines += ["", END, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="WINDOWS[/PER]")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres"), nargs="+", default=["sqlite", "postgres"]
    )
    parser.add_argument("--first", type=int, default=100, help="first answers per shape")
    parser.add_argument("--balanced", type=int, default=10, help="cold balanced counts")
    parser.add_argument("--index", type=int, default=3, help="cold indexes")
    parser.add_argument("--index-warm", type=int, default=10, help="warm indexes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--record", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    args.command = "python -m bench.growth " + " ".join(sys.argv[1:])
    args.load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    sizes = [Size.parse(text) for text in args.sizes]
    for size in sizes:  # all data first, so that a missing manifest does not stop the run halfway
        manifest(size.windows, args.seed, per_recording=size.per_recording)
    rows = [(b, size, run_size(b, size, args)) for b in args.backend for size in sizes]
    args.minutes = (time.monotonic() - started) / 60
    section = report(rows, args)
    if args.record:
        write_section(section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
