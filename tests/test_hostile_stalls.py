"""Large bodies and long filters are parsed and keyed off the event loop, so one request cannot
stall the others."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from seizure_stats.schemas import questions as schemas
from seizure_stats.schemas.scans import ScanPartIn
from tests.support import manifests
from tests.support.uploads import load


def test_large_bodies_are_parsed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 20 MB scan part parsed on the event loop stalled every other request (/healthz for about
    0.5 s); so did a large JSON body. Both are parsed, and validated, in a worker thread."""
    from app.api import bodies, scans

    load(client, "ds", manifests.SMALL)
    on_the_loop: list[str] = []
    parsed_in_threads: list[str] = []

    def loop_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    real_loads, real_part = json.loads, ScanPartIn.model_validate_json
    real_split, real_load = schemas.split_values, bodies.load_json

    def spy_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if len(text) > 2**20 and loop_running():
            on_the_loop.append(f"json.loads of {len(text)} bytes")
        return real_loads(text, *args, **kwargs)

    def spy_part(data: Any, *args: Any, **kwargs: Any) -> ScanPartIn:
        if loop_running():
            on_the_loop.append(f"scan part of {len(data)} bytes")
        return real_part(data, *args, **kwargs)

    def spy_split(value: object) -> object:
        if isinstance(value, list) and len(value) > 1000 and loop_running():
            on_the_loop.append(f"a filter of {len(value)} values validated")
        return real_split(value)

    def spy_load(document: Any) -> Any:
        (on_the_loop if loop_running() else parsed_in_threads).append(type(document).__name__)
        return real_load(document)

    monkeypatch.setattr(json, "loads", spy_loads)
    monkeypatch.setattr(ScanPartIn, "model_validate_json", spy_part)
    monkeypatch.setattr(schemas, "split_values", spy_split)
    monkeypatch.setattr(bodies, "load_json", spy_load)
    monkeypatch.setattr(scans, "load_json", spy_load)
    files = [
        {"cache_file": f"f{i}_windows.npz", "size": 1, "mtime_ns": 1, "status": "ok"}
        | {"n_samples": 15360, "n_pos": [0, 15360, 7]}
        for i in range(4)
    ]
    part = json.dumps({"scan_id": "big", "files": files, "other_files": ["x" * 100] * 200_000})
    assert len(part) > 20 * 10**6
    pushed = client.post("/api/v1/datasets/parts/scan-parts", content=part)
    assert pushed.status_code == 200, pushed.text[:300]
    names = [f"nobody{i:06d}_s001_t000_windows.npz" for i in range(90_000)]
    for path in ("stats", "balanced", "breakdown", "histogram", "presence"):
        field = "missing" if path == "presence" else "recording"
        response = client.post(f"/api/v1/datasets/ds/{path}", json={field: names})
        # Nothing to balance around, no sample counts: refused, after parsing all the same.
        refused = path in ("balanced", "histogram")
        assert response.status_code == (422 if refused else 200), response.text[:300]
    assert on_the_loop == []
    assert len(parsed_in_threads) == 6


def longest_pause_of_another_thread(work: Callable[[], object]) -> tuple[float, float]:
    """How long `work` took, and the longest a thread ticking every millisecond was held up."""
    longest = 0.0
    done = threading.Event()

    def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    started = time.perf_counter()
    work()
    took = time.perf_counter() - started
    done.set()
    ticker.join()
    return took, longest


def test_json_is_parsed_in_slices_that_let_other_threads_run() -> None:
    """A C parser holds the GIL from the first byte to the last: in a worker thread, it still
    stalled the event loop. The body parser hands the GIL over between slices."""
    from app.api.bodies import NotJsonError, load_json

    names = [f"p{i:07d}_s001_t000_windows.npz" for i in range(1_000_000)]
    document = json.dumps({"missing": names, "n": [1.5, -2, 2**63 - 1, None, True]}).encode()
    assert load_json(document) == json.loads(document)
    # What yajl would read otherwise is read as json.loads reads it.
    for different in [
        rb'{"a": ["\ud800", "\ud800\u0041", "\ud83d\ude00"]}',
        b'{"a": 18446744073709551616}',
    ]:
        assert load_json(different) == json.loads(different)
    took, paused = longest_pause_of_another_thread(lambda: load_json(document))
    assert paused < took / 4, f"another thread waited {paused:.3f} s of {took:.3f} s"
    _, paused_whole = longest_pause_of_another_thread(lambda: json.loads(document))
    assert paused_whole > 2 * paused
    for bad, reason in [
        (b'{"a": 1} x', "trailing garbage"),
        (b'{"a": NaN}', "invalid char"),
        (b'{"a": [1, 2', "premature EOF"),
        (b"", "premature EOF"),
        (b'{"a": "\xff"}', "invalid"),
        # Past 64 bits json.loads reads it instead (see load_json), and refuses this many digits.
        (b'{"a": ' + b"9" * 5000 + b"}", "limit \\(4300 digits\\)"),
        (b'{"a": 1e999}', "overflow"),
    ]:
        with pytest.raises(NotJsonError, match=reason):
            load_json(bad)


def test_long_filters_are_keyed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalising and hashing a filter of 100,000 names, for its cache key and ETag, took about
    0.1 s: on the event loop, every other request waited that long. Short filters stay there."""
    from app.api import heavy

    load(client, "ds", manifests.SMALL)
    where: list[tuple[int, bool]] = []
    real = heavy.make_question

    def spy(kind: str, dataset: str, state: Any, query: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        where.append((len(query.recording), on_loop))
        return real(kind, dataset, state, query)

    monkeypatch.setattr(heavy, "make_question", spy)
    names = [f"r{i:06d}_windows.npz" for i in range(5_000)]
    for route in ("stats", "balanced", "balanced/index"):
        for recording in (names, names[:3]):
            response = client.post(f"/api/v1/datasets/ds/{route}", json={"recording": recording})
            assert response.status_code == (422 if route != "stats" else 200), response.text
    assert where[::2] == [(5_000, False)] * 3
    assert where[1::2] == [(3, True)] * 3
