"""Manifest import: validation that names the offending entry, atomicity, idempotency, presence."""

from __future__ import annotations

import gzip
import io
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import run_write
from app.errors import ManifestError
from app.ingest.importer import prepare_import, store_import
from app.ingest.manifest import parse_manifest
from app.models import Recording, Snapshot, Window
from tests.support import manifests

GOOD = {"cache_file": "p_s001_t000_windows.npz", "window_idx": 0}


def parse(data: bytes | str) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    return parse_manifest(io.BytesIO(raw), full_threshold=0.99)


def body(**lists: Any) -> str:
    manifest: dict[str, Any] = {"partial_seizure": [], "full_seizure": [], "no_seizure": []}
    manifest.update(lists)
    return json.dumps(manifest)


def named(cache_file: Any) -> str:
    """A manifest of one no_seizure entry whose `cache_file` is this."""
    return body(no_seizure=[{"cache_file": cache_file, "window_idx": 0}])


def raw_index(text: str) -> str:
    """A manifest of GOOD whose `window_idx` is written as this raw JSON text."""
    return body(no_seizure=[GOOD]).replace('"window_idx": 0', '"window_idx": ' + text)


INVALID: list[tuple[str, bytes | str, str]] = [
    ("not an object", "[]", "must be a JSON object"),
    ("a string", '"manifest"', "must be a JSON object"),
    ("unknown category", body(seizure=[GOOD]), "unknown category 'seizure'"),
    (
        "missing category",
        json.dumps({"partial_seizure": [GOOD], "no_seizure": []}),
        "'full_seizure'",
    ),
    (
        "category twice",
        '{"partial_seizure": [], "partial_seizure": [], "full_seizure": [], "no_seizure": []}',
        "appears twice",
    ),
    ("list not a list", body(no_seizure={"a": 1}), "no_seizure: must be a list"),
    ("entry not an object", body(no_seizure=[GOOD, 3]), "no_seizure[1]: must be an object"),
    ("null entry", body(no_seizure=[None]), "no_seizure[0]: must be an object"),
    (
        "missing cache_file",
        body(full_seizure=[{"window_idx": 1}]),
        "full_seizure[0]: missing key 'cache_file'",
    ),
    (
        "missing window_idx",
        body(full_seizure=[{"cache_file": "a.npz"}]),
        "full_seizure[0]: missing key 'window_idx'",
    ),
    (
        "unknown entry key",
        body(no_seizure=[GOOD | {"label": 1}]),
        "no_seizure[0]: unknown key 'label'",
    ),
    (
        "cache_file number",
        named(7),
        "no_seizure[0].cache_file: must be a string",
    ),
    ("negative index", body(no_seizure=[GOOD | {"window_idx": -3}]), "no_seizure[0].window_idx"),
    ("fractional index", body(no_seizure=[GOOD | {"window_idx": 1.5}]), "no_seizure[0].window_idx"),
    (
        "float-looking index",
        body(no_seizure=[GOOD | {"window_idx": 2.0}]),
        "no_seizure[0].window_idx",
    ),
    ("string index", body(no_seizure=[GOOD | {"window_idx": "3"}]), "no_seizure[0].window_idx"),
    ("boolean index", body(no_seizure=[GOOD | {"window_idx": True}]), "no_seizure[0].window_idx"),
    ("huge index", body(no_seizure=[GOOD | {"window_idx": 10**30}]), "no_seizure[0].window_idx"),
    (
        "path traversal",
        named("../etc/passwd"),
        "bare file name",
    ),
    (
        "absolute path",
        named("/data/x.npz"),
        "bare file name",
    ),
    (
        "backslash path",
        named("a\\b.npz"),
        "bare file name",
    ),
    ("dot-dot name", named(".."), "'.' or '..'"),
    ("empty name", named(""), "is empty"),
    (
        "control character",
        named("a\u0000b"),
        "control characters",
    ),
    (
        "duplicate within",
        body(no_seizure=[GOOD, GOOD]),
        "appears twice: no_seizure[0] and no_seizure[1]",
    ),
    (
        "duplicate across",
        body(partial_seizure=[GOOD], no_seizure=[{"cache_file": "x.npz", "window_idx": 0}, GOOD]),
        "appears twice: partial_seizure[0] and no_seizure[1]",
    ),
    ("empty manifest", body(), "no windows"),
    ("empty object", "{}", "missing the category"),
    ("truncated", body(no_seizure=[GOOD])[:-5], "not valid JSON"),
    ("not json", "partial_seizure: []", "not valid JSON"),
    ("not utf-8", b'{"no_seizure": [{"cache_file": "\xff\xfe", "window_idx": 0}]}', "UTF-8"),
    ("trailing garbage", body(no_seizure=[GOOD]) + " {}", "not valid JSON"),
    (
        "deep nesting",
        '{"no_seizure": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "no_seizure[0]: must be an object",
    ),
    # -- more hostile inputs: each must be refused with a 4xx that names the problem --
    (
        "null",
        "null",
        "must be a JSON object with the keys partial_seizure, full_seizure, no_seizure; got null",
    ),
    ("a number", "42", "got the number 42"),
    ("a boolean", "true", "got a boolean"),
    ("whitespace only", "  \n\t ", "not valid JSON"),
    ("utf-8 byte order mark", "\ufeff" + body(no_seizure=[GOOD]), "not valid JSON"),
    ("utf-16", body(no_seizure=[GOOD]).encode("utf-16"), "not valid JSON"),
    (
        "latin-1 name",
        named("cafe.npz").replace("cafe", "caf\xe9").encode("latin-1"),
        "not valid UTF-8",
    ),
    ("raw control byte", body(no_seizure=[GOOD]).replace("p_s001", "p\x01s001"), "not valid JSON"),
    (
        "NaN index",
        raw_index("NaN"),
        "not valid JSON",
    ),
    (
        "Infinity index",
        raw_index("Infinity"),
        "not valid JSON",
    ),
    ("unclosed array", "[" * 1000, "must be a JSON object"),
    (
        "category list null",
        body(partial_seizure=None),
        "partial_seizure: must be a list of entries, got null",
    ),
    (
        "category list a string",
        body(full_seizure="x.npz"),
        "full_seizure: must be a list of entries, got the string 'x.npz'",
    ),
    (
        "null cache_file",
        named(None),
        "no_seizure[0].cache_file: must be a string, got null",
    ),
    (
        "list cache_file",
        named(["a.npz"]),
        "no_seizure[0].cache_file: must be a string, got an array",
    ),
    (
        "null window_idx",
        body(no_seizure=[GOOD | {"window_idx": None}]),
        "no_seizure[0].window_idx: must be an integer from 0 to 2147483647, got null",
    ),
    (
        "object window_idx",
        body(no_seizure=[GOOD | {"window_idx": {"v": 1}}]),
        "no_seizure[0].window_idx: must be an integer from 0 to 2147483647, got an object",
    ),
    (
        "index one past the limit",
        body(no_seizure=[GOOD | {"window_idx": 2**31}]),
        "got the number 2147483648",
    ),
    (
        "exponent index",
        raw_index("1e3"),
        "no_seizure[0].window_idx",
    ),
    (
        "overflowing exponent",
        raw_index("1e400"),
        "no_seizure[0].window_idx",
    ),
    (
        "astronomical index",
        raw_index("9" * 5000),
        "more than 4300 digits",
    ),
    (
        "astronomical negative",
        raw_index("-" + "9" * 20_000),
        "more than 4300 digits",
    ),
    (
        "escaped traversal",
        body(no_seizure=[GOOD]).replace("p_s001_t000_windows.npz", "..\\/..\\/etc\\/passwd"),
        "bare file name",
    ),
    (
        "windows absolute path",
        named("C:\\data\\x.npz"),
        "bare file name",
    ),
    (
        "home directory",
        named("~/x.npz"),
        "bare file name",
    ),
    (
        "name too long",
        named("a" * 256),
        "longer than 255",
    ),
    (
        "key twice in an entry",
        raw_index('0, "window_idx": 1'),
        "key 'window_idx' appears twice",
    ),
    (
        "duplicate among thousands",
        body(
            no_seizure=[
                {"cache_file": f"r{i % 50}.npz", "window_idx": i // 50} for i in range(5000)
            ]
            + [{"cache_file": "r7.npz", "window_idx": 3}]
        ),
        "('r7.npz', 3) appears twice: no_seizure[157] and no_seizure[5000]",
    ),
    ("deep nesting at the top", "[" * 100_000 + "]" * 100_000, "must be a JSON object"),
    ("deep objects at the top", '{"a": ' * 100_000 + "1" + "}" * 100_000, "unknown category 'a'"),
    (
        "deep nesting in a value",
        raw_index("[" * 100_000 + "]" * 100_000),
        "no_seizure[0].window_idx",
    ),
    (
        "deep nesting in an unknown key",
        raw_index('0, "x": ' + '{"y": ' * 100_000 + "0" + "}" * 100_000),
        "no_seizure[0]: unknown key 'x'",
    ),
    (
        "n_pos without n_samples",
        body(no_seizure=[GOOD | {"n_pos": 0}]),
        "n_pos and n_samples go together",
    ),
    (
        "n_pos above n_samples",
        body(partial_seizure=[GOOD | {"n_pos": 9, "n_samples": 4}]),
        "n_pos <= n_samples",
    ),
    (
        "counts in some entries only",
        body(
            no_seizure=[
                GOOD | {"n_pos": 0, "n_samples": 4},
                {"cache_file": "b.npz", "window_idx": 0},
            ]
        ),
        "every entry or for none",
    ),
    (
        "counts contradict category",
        body(no_seizure=[GOOD | {"n_pos": 3, "n_samples": 4}]),
        "makes it partial_seizure",
    ),
]


@pytest.mark.parametrize(("name", "data", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifests_are_refused_with_a_named_problem(
    name: str, data: bytes | str, message: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse(data)
    assert message in caught.value.detail, caught.value.detail


def test_content_hash_ignores_formatting_and_key_order() -> None:
    compact = json.dumps(manifests.SMALL)
    reordered = json.dumps(
        {
            key: [dict(reversed(list(e.items()))) for e in manifests.SMALL[key]]
            for key in reversed(list(manifests.SMALL))
        },
        indent=4,
    )
    assert parse(compact).content_hash == parse(reordered).content_hash
    changed = json.loads(compact)
    changed["no_seizure"].reverse()
    assert parse(json.dumps(changed)).content_hash != parse(compact).content_hash


def test_parsed_columns_keep_manifest_order() -> None:
    parsed = parse(json.dumps(manifests.SMALL))
    from seizure_stats.labels import Category

    columns = parsed.as_arrays(Category.NO_SEIZURE)
    got = [
        (parsed.recordings[r], int(i))
        for r, i in zip(columns["recording"], columns["window_idx"], strict=True)
    ]
    assert got == [(e["cache_file"], e["window_idx"]) for e in manifests.SMALL["no_seizure"]]


def count_rows(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as session:
        return (
            session.scalar(select(func.count()).select_from(Snapshot)) or 0,
            session.scalar(select(func.count()).select_from(Window)) or 0,
            session.scalar(select(func.count()).select_from(Recording)) or 0,
        )


def test_refused_upload_changes_nothing(client: TestClient, factory: sessionmaker[Session]) -> None:
    first = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL))
    assert first.status_code == 201
    before_rows = count_rows(factory)
    before_stats = client.get("/api/v1/datasets/ds/stats").json()
    before_answers = answers(client, "ds")
    for name, data, message in INVALID:
        raw = data.encode() if isinstance(data, str) else data
        for body_sent, headers in ((raw, {}), (gzip.compress(raw), {"Content-Encoding": "gzip"})):
            response = client.post(
                "/api/v1/datasets/ds/snapshots", content=body_sent, headers=headers
            )
            assert 400 <= response.status_code < 500, (name, response.text)
            assert response.json()["error"] in ("invalid_manifest", "unreadable_manifest")
            assert message in response.json()["detail"], (name, response.json())
        response = client.post("/api/v1/datasets/brand-new/snapshots", content=data)
        assert 400 <= response.status_code < 500
    assert count_rows(factory) == before_rows
    assert client.get("/api/v1/datasets/ds/stats").json() == before_stats
    assert answers(client, "ds") == before_answers
    assert client.get("/api/v1/datasets/brand-new").status_code == 404


def answers(client: TestClient, dataset: str) -> list[Any]:
    """Everything a reader sees of a dataset: its snapshots, stats, balanced counts and index."""
    base = f"/api/v1/datasets/{dataset}"
    return [
        client.get(base).json(),
        client.get(f"{base}/snapshots").json(),
        client.get(f"{base}/recordings").json(),
        client.get(f"{base}/stats?weighting=effective&patient=aaaaaaaa").json(),
        client.get(f"{base}/balanced?seed=7").json(),
        client.get(f"{base}/balanced/index?seed=7").text,
    ]


def test_failure_while_storing_rolls_back_everything(
    client: TestClient, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        client.post(
            "/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL)
        ).status_code
        == 201
    )
    before = count_rows(factory)
    from app.ingest import snapshot_store as store

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_insert_rollups", explode)
    for name in ("ds", "other"):
        prepared = prepare_import(
            factory, name, io.BytesIO(json.dumps(manifests.generated(2)).encode())
        )
        with pytest.raises(RuntimeError):
            run_write(factory, partial(store_import, prepared=prepared))
    assert count_rows(factory) == before
    current = client.get("/api/v1/datasets/ds").json()["current_snapshot"]
    assert current["counts"]["total"] == 12
    assert client.get("/api/v1/datasets/other").status_code == 404


def test_reimport_returns_the_existing_snapshot(client: TestClient) -> None:
    first = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL))
    again = client.post(
        "/api/v1/datasets/ds/snapshots",
        content=gzip.compress(json.dumps(manifests.SMALL, indent=2).encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert len(client.get("/api/v1/datasets/ds/snapshots").json()) == 1


def test_reimporting_an_older_manifest_makes_it_current_again(client: TestClient) -> None:
    first = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL)).json()
    second = client.post(
        "/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.generated(1))
    ).json()
    assert client.get("/api/v1/datasets/ds").json()["current_snapshot"]["id"] == second["id"]
    again = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL))
    assert again.status_code == 200
    assert client.get("/api/v1/datasets/ds").json()["current_snapshot"]["id"] == first["id"]
    assert len(client.get("/api/v1/datasets/ds/snapshots").json()) == 2


def test_gzip_is_detected_without_the_header(client: TestClient) -> None:
    data = gzip.compress(json.dumps(manifests.SMALL).encode())
    response = client.post("/api/v1/datasets/ds/snapshots", content=data)
    assert response.status_code == 201
    assert response.json()["counts"]["total"] == 12


def test_import_with_cache_dir_records_presence(
    factory: sessionmaker[Session], tmp_path: Path, client: TestClient
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in (
        "aaaaaaaa_s001_t000_windows.npz",
        "bbbbbbbb_s001_t001_windows.npz",
        "stray_windows.npz",
    ):
        (cache / name).write_bytes(b"")  # existence is all that is checked
    prepared = prepare_import(
        factory, "ds", io.BytesIO(json.dumps(manifests.SMALL).encode()), cache_dir=cache
    )
    outcome = run_write(factory, partial(store_import, prepared=prepared))
    assert outcome.presence is not None
    assert outcome.presence.missing == ["aaaaaaaa_s002_t000_windows.npz"]
    assert outcome.presence.unexpected == ["stray_windows.npz"]
    answer = client.get("/api/v1/datasets/ds/stats").json()
    assert answer["missing_windows"] == 4
    assert answer["counts"]["total"] == 8


def test_recordings_and_rollups_written_in_chunks_match_the_manifest(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import Counter

    from app.ingest import bulk_rows
    from app.ingest.names import parse_recording_name
    from app.models import RecordingRollup

    monkeypatch.setattr(bulk_rows, "ROWS_PER_CHUNK", 7)  # many chunks and a partial last one
    keys = {"partial_seizure": "partial", "full_seizure": "full", "no_seizure": "no_seizure"}
    # The second manifest shares some recordings with the first and brings new ones.
    for seed in (3, 4):
        manifest = manifests.generated(seed, recordings=30, with_samples=True)
        prepared = prepare_import(factory, "ds", io.BytesIO(json.dumps(manifest).encode()))
        outcome = run_write(factory, partial(store_import, prepared=prepared))
        expected: Counter[tuple[str, str]] = Counter()
        for category, entries in manifest.items():
            for entry in entries:
                name, prefix = entry["cache_file"], keys[category]
                expected[name, f"{prefix}_windows"] += 1
                expected[name, f"{prefix}_pos"] += entry["n_pos"]
                expected[name, f"{prefix}_samples"] += entry["n_samples"]
        with factory() as session:
            rows = session.execute(
                select(Recording, RecordingRollup)
                .join(RecordingRollup, RecordingRollup.recording_id == Recording.id)
                .where(RecordingRollup.snapshot_id == outcome.snapshot.id)
            ).all()
            names = {name for name, _ in expected}
            assert sorted(r.cache_file for r, _ in rows) == sorted(names)
            for recording, rollup in rows:
                parsed = parse_recording_name(recording.cache_file)
                assert (recording.stem, recording.patient, recording.session, recording.token) == (
                    tuple(parsed)
                )
                assert recording.present is None
                found = {column: getattr(rollup, column) for column in ROLLUP_COLUMNS}
                assert found == {c: expected[recording.cache_file, c] for c in ROLLUP_COLUMNS}
            everything = session.scalars(select(Recording.cache_file)).all()
            assert len(everything) == len(set(everything))


ROLLUP_COLUMNS = [
    f"{prefix}_{kind}"
    for prefix in ("partial", "full", "no_seizure")
    for kind in ("windows", "pos", "samples")
]
