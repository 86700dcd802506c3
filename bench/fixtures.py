"""What the benchmarks share: manifests cached under bench/data, imports through the CLI, fresh
databases, the machine's description, and the sections of bench/RESULTS.md.

bench/data sits next to this module (git-ignored), so every checkout keeps its own data and a
rerun reuses the manifests it generated before.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.generate import write_manifest

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "RESULTS.md"
POSTGRES_ADMIN = os.environ.get(
    "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def manifest(
    windows: int, seed: int, with_cache_dir: bool = False, per_recording: int = 330
) -> tuple[Path, Path | None]:
    """The seeded manifest of that shape, generated once; with an empty file per recording in
    its cache dir if asked."""
    shape = f"{windows}-{seed}" + ("" if per_recording == 330 else f"-{per_recording}")
    path = DATA / f"manifest-{shape}.json"
    cache = DATA / f"cache-{shape}" if with_cache_dir else None
    if not path.exists() or (cache is not None and not cache.exists()):
        log(f"generating {windows:,} windows, {per_recording} a recording -> {path.name}")
        DATA.mkdir(exist_ok=True)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
        write_manifest(path, windows, seed, cache, per_recording=per_recording)
    return path, cache


def cli(database_url: str, *args: str) -> tuple[float, int, str]:
    """Run `python -m app ARGS`; wall seconds, peak RSS (MiB) of that process, its output."""
    env = os.environ | {"DATABASE_URL": database_url}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"seizure-stats {' '.join(args)} failed:\n{output}")
    return seconds, usage.ru_maxrss // 1024, output


def fresh_postgres(name: str = "seizure_stats_bench") -> str:
    """An empty Postgres database of that name; kept afterwards for a look at what it measured."""
    from tests.support.postgres import create_database

    return create_database(POSTGRES_ADMIN, name, replace=True)


def fresh_sqlite(path: Path) -> str:
    """The URL of an SQLite file at `path`, removed first with its journal files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def postgres_version() -> str:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN) as admin:
        row = admin.execute("show server_version").fetchone()
    return str(row[0]) if row else "unknown"


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = match.group(1).strip() if match else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def write_section(section: str, begin: str, end: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) into RESULTS.md, replacing
    what stood between those markers, or at the end the first time."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)
