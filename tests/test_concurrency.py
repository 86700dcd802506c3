"""Consistency under concurrency, against a real uvicorn process on SQLite and Postgres.

Readers asking while a large import commits see the old totals or the new ones, never anything
in between, and never the old after the new. Imports racing on one dataset end with one
snapshot each, or one in all when the content is the same, never a mix.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.config import Settings
from app.db import make_engine, make_session_factory, run_write
from app.ingest.importer import prepare_import, store_import
from app.main import create_app
from bench.generate import write_manifest
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.integrity import integrity_problems
from tests.support.servers import live_server
from tests.support.uploads import post_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

Manifest = tuple[bytes, dict[str, int]]


def generated_manifest(directory: Path, windows: int, seed: int) -> Manifest:
    path = directory / f"manifest-{windows}-{seed}.json"
    counts = write_manifest(path, windows, seed=seed, cache_dir=None)
    return path.read_bytes(), counts


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    return generated_manifest(tmp_path_factory.mktemp("concurrency"), 400_000, seed=11)


@pytest.fixture(scope="session")
def rivals(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, Manifest]:
    directory = tmp_path_factory.mktemp("rivals")
    return generated_manifest(directory, 150_000, 12), generated_manifest(directory, 170_000, 13)


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    token = make_token(database_url, "race-writer", "write")
    with live_server(database_url, tmp_path) as live:
        yield live.url, {"Authorization": f"Bearer {token}"}


def total(counts: dict[str, int]) -> int:
    return counts["partial_seizure"] + counts["full_seizure"] + counts["no_seizure"]


def test_readers_see_old_or_new_totals_never_a_mix(
    server: tuple[str, dict[str, str]], database_url: str, large: Manifest
) -> None:
    url, auth = server
    first = post_manifest(url, "ds", manifests.SMALL, headers=auth, timeout=300)
    assert first.status_code == 201
    old = (first.json()["id"], first.json()["content_hash"], 12)
    seen: list[list[tuple[int, str, int]]] = [[] for _ in range(4)]
    problems: list[str] = []
    done = threading.Event()

    def read(into: list[tuple[int, str, int]], path: str) -> None:
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                finished = done.is_set()
                response = http.get(path)
                if response.status_code != 200:
                    problems.append(f"{path}: {response.status_code} {response.text[:200]}")
                elif path.endswith("/stats"):
                    body = response.json()
                    into.append((body["snapshot"], body["content_hash"], body["counts"]["total"]))
                else:
                    body = response.json()["current_snapshot"]
                    into.append((body["id"], body["content_hash"], body["counts"]["total"]))
                if finished:
                    return

    paths = ["/api/v1/datasets/ds/stats"] * 3 + ["/api/v1/datasets/ds"]
    readers = [threading.Thread(target=read, args=(s, p)) for s, p in zip(seen, paths, strict=True)]
    for reader in readers:
        reader.start()
    time.sleep(0.3)
    body, counts = large
    imported = post_manifest(url, "ds", body, headers=auth, timeout=300)
    done.set()
    for reader in readers:
        reader.join(60)
    assert imported.status_code == 201, imported.text
    new = (imported.json()["id"], imported.json()["content_hash"], total(counts))
    assert problems == []
    for observations in seen:
        assert observations, "every reader got answers"
        assert set(observations) <= {old, new}, set(observations) - {old, new}
        # Once a reader has seen the new snapshot it never sees the old one again.
        first_new = observations.index(new) if new in observations else len(observations)
        assert all(o == new for o in observations[first_new:])
        assert observations[-1] == new
    assert sum(o == old for s in seen for o in s) > 0
    assert integrity_problems(database_url) == []


def test_two_different_imports_racing_make_two_whole_snapshots(
    server: tuple[str, dict[str, str]], database_url: str, rivals: tuple[Manifest, Manifest]
) -> None:
    url, auth = server
    for dataset in ("ds", "brand-new"):  # an existing dataset, and one the race creates
        if dataset == "ds":
            base = post_manifest(url, "ds", manifests.SMALL, headers=auth, timeout=300)
            assert base.status_code == 201
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda m, d=dataset: post_manifest(url, d, m[0], headers=auth, timeout=300),
                    rivals,
                )
            )
        assert [r.status_code for r in results] == [201, 201], [r.text for r in results]
        ids = [r.json()["id"] for r in results]
        assert len(set(ids)) == 2
        for response, (_, counts) in zip(results, rivals, strict=True):
            snapshot = httpx.get(
                f"{url}/api/v1/datasets/{dataset}/snapshots/{response.json()['id']}"
            )
            assert snapshot.json()["counts"]["total"] == total(counts)
            assert snapshot.json()["counts"]["partial_seizure"] == counts["partial_seizure"]
            stats = httpx.get(
                f"{url}/api/v1/datasets/{dataset}/stats", params={"snapshot": response.json()["id"]}
            ).json()
            assert stats["counts"]["total"] == total(counts)
            assert stats["counts"]["full_seizure"] == counts["full_seizure"]
        current = httpx.get(f"{url}/api/v1/datasets/{dataset}").json()["current_snapshot"]
        assert current["id"] in ids
        listed = httpx.get(f"{url}/api/v1/datasets/{dataset}/snapshots").json()
        assert len(listed) == (3 if dataset == "ds" else 2)
    assert [d["name"] for d in httpx.get(f"{url}/api/v1/datasets").json()] == ["brand-new", "ds"]
    assert integrity_problems(database_url) == []


def test_the_same_import_racing_itself_makes_one_snapshot(
    server: tuple[str, dict[str, str]], database_url: str, rivals: tuple[Manifest, Manifest]
) -> None:
    url, auth = server
    body, counts = rivals[0]
    # First into a dataset the race creates, then again once the content exists.
    for expected in ([200, 200, 201], [200, 200, 200]):
        with ThreadPoolExecutor(3) as pool:
            results = list(
                pool.map(
                    lambda _: post_manifest(url, "fresh", body, headers=auth, timeout=300), range(3)
                )
            )
        statuses = sorted(r.status_code for r in results)
        assert statuses == expected, [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        assert all(r.json()["counts"]["total"] == total(counts) for r in results)
        assert len(httpx.get(f"{url}/api/v1/datasets/fresh/snapshots").json()) == 1
    assert integrity_problems(database_url) == []


def index_entries(response: httpx.Response) -> list[tuple[str, int]]:
    return [(e["cache_file"], e["window_idx"]) for e in map(json.loads, response.text.splitlines())]


Answer = tuple[str, dict[str, Any], httpx.Response]


def questions(pinned: int, tag: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """balanced, balanced/index and stats, of the pinned snapshot and of the current one.

    An unknown patient excluded makes each question new (the same subset): none is answered
    from memory.
    """
    seed = sum(map(ord, tag)) % 1000
    for path in ("balanced", "balanced/index", "stats"):
        for snapshot in ({"snapshot": pinned}, {}):
            params = snapshot | {"exclude_patient": f"nobody-{tag}"}
            yield path, params if path == "stats" else params | {"seed": seed}


def assert_exact(answers: list[Answer], by_snapshot: dict[int, Any], pinned: int) -> None:
    """Every answer 200, and exactly the answer for the snapshot it names (docs/design.md's rules)."""
    assert [(p, r.status_code, r.text[:200]) for p, _, r in answers if r.status_code != 200] == []
    for path, params, response in answers:
        if path == "balanced/index":
            named = int(response.headers["X-Snapshot"])
        else:
            named = response.json()["snapshot"]
        if "snapshot" in params:
            assert named == pinned
        manifest = by_snapshot[named]
        if path == "stats":
            expected = oracle.expected_stats(manifest, set())
            assert response.json()["counts"] == expected["counts"], (path, params)
            assert response.json()["recordings"] == expected["recordings"]
            continue
        counts, index = oracle.expected_balanced(manifest, set(), seed=params["seed"])
        if path == "balanced":
            got = response.json()["counts"]
            assert [got[c] for c in oracle.CATEGORIES] == [counts[c] for c in oracle.CATEGORIES]
        else:
            assert index_entries(response) == index, (path, params)


def test_an_import_between_two_statements_of_a_read_changes_nothing_it_sees(
    settings: Settings, write_token: str, database_url: str
) -> None:
    """Each read asks several statements; an import committed between them must not be seen.

    On Postgres at READ COMMITTED each statement had its own view: balanced sized an array by
    the recordings it saw, a later statement saw the import's new ones, and answered 500
    (IndexError), pinned snapshots included. The hook commits an import, from a connection of
    its own, right after the first statement of each read that touches the recordings.
    """
    base = manifests.generated(31, recordings=40, odd_names=False)
    extra = [manifests.generated(300 + i, recordings=8, odd_names=False) for i in range(100)]
    extra = [m for m in extra if m["partial_seizure"]][:72]  # something to balance around
    by_snapshot: dict[int, dict[str, Any]] = {}
    writer_engine = make_engine(database_url)
    writer = make_session_factory(writer_engine)
    armed = threading.Event()

    def import_between(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if armed.is_set() and re.search(r"(FROM|JOIN) recordings\b", statement) and extra:
            armed.clear()
            manifest = extra.pop()
            prepared = prepare_import(writer, "ds", io.BytesIO(json.dumps(manifest).encode()))
            outcome = run_write(writer, partial(store_import, prepared=prepared))
            by_snapshot[outcome.snapshot.id] = manifest

    application = create_app(settings)
    headers = {"Authorization": f"Bearer {write_token}"}
    try:
        with TestClient(application, headers=headers, raise_server_exceptions=False) as client:
            first = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(base))
            assert first.status_code == 201, first.text
            pinned = first.json()["id"]
            by_snapshot[pinned] = base
            event.listen(application.state.engine, "after_cursor_execute", import_between)
            answers: list[Answer] = []
            for round_ in range(12):
                for path, params in questions(pinned, str(round_)):
                    armed.set()
                    response = client.get(f"/api/v1/datasets/ds/{path}", params=params)
                    assert not armed.is_set(), f"{path} {params} read no recordings"
                    answers.append((path, params, response))
            event.remove(application.state.engine, "after_cursor_execute", import_between)
    finally:
        writer_engine.dispose()

    assert_exact(answers, by_snapshot, pinned)
    assert len(by_snapshot) == 1 + len(answers)


def test_imports_racing_readers_leave_every_answer_exact(
    server: tuple[str, dict[str, str]], database_url: str
) -> None:
    """The same race against a real server, as it happens: readers of the pinned and of the
    current snapshot while imports add recordings to the dataset, one after another."""
    url, auth = server
    base = manifests.generated(41, recordings=150, odd_names=False)
    extra = [manifests.generated(500 + i, recordings=30, odd_names=False) for i in range(40)]
    extra = [m for m in extra if m["partial_seizure"]][:20]
    first = post_manifest(url, "race", base, headers=auth, timeout=300)
    assert first.status_code == 201
    pinned = first.json()["id"]
    by_snapshot: dict[int, Any] = {pinned: base}
    answers: list[Answer] = []
    broken: list[str] = []
    done = threading.Event()

    def read(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for round_ in range(10_000):
                if done.is_set():
                    return
                for path, params in questions(pinned, f"{worker}-{round_}"):
                    try:
                        response = http.get(f"/api/v1/datasets/race/{path}", params=params)
                    except httpx.TransportError as exc:  # a 500 sometimes ends the connection
                        broken.append(f"{path} {params}: {exc!r}")
                        continue
                    answers.append((path, params, response))

    with ThreadPoolExecutor(3) as pool:
        readers = [pool.submit(read, worker) for worker in range(3)]
        try:
            for manifest in extra:
                imported = post_manifest(url, "race", manifest, headers=auth, timeout=300)
                assert imported.status_code == 201, imported.text
                by_snapshot[imported.json()["id"]] = manifest
        finally:
            done.set()
        for reader in readers:
            reader.result()
    assert broken == []
    assert len(answers) > 100
    assert_exact(answers, by_snapshot, pinned)
    current = [r for p, params, r in answers if p == "stats" and "snapshot" not in params]
    named = {r.json()["snapshot"] for r in current}
    assert len(named) > 3, "current readers saw the current snapshot move"
    assert integrity_problems(database_url) == []
