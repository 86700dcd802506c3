"""Cache scans against a brute-force scan of real NPZ files, on SQLite and Postgres."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

import seizure_stats.client
from app.cli import main
from app.ingest.manifest import parse_manifest
from app.models import ScanFile
from app.scan import npz, parts
from app.scan.cache_reader import list_cache_dir, plan_scan, scan_part
from app.scan.file_records import SAME_NAMED_FIELDS
from app.scan.file_result import (
    OK,
    FileResult,
    IssueCode,
    as_stored,
    from_stored,
    parse_shard,
    shard_of,
)
from seizure_stats.schemas.scans import IssueCodeName, ScanFileRecordOut
from tests.support import scan_cache
from tests.support.scan_cache import BAD_FILES


@pytest.fixture(scope="module")
def pristine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scan_cache.build_cache(tmp_path_factory.mktemp("pristine") / "cache")


@pytest.fixture
def cache(pristine_cache: Path, tmp_path: Path) -> Path:
    return scan_cache.copy_cache(pristine_cache, tmp_path / "cache")


@pytest.fixture
def cli(database_url: str) -> Any:
    runner = CliRunner()

    def run(*args: str) -> Result:
        result = runner.invoke(main, list(args), env={"DATABASE_URL": database_url})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return run


@pytest.fixture
def run_scan(cli: Any) -> Any:
    """`seizure-stats scan DIRECTORY --dataset NAME --workers N`, then any further options."""

    def run(directory: Path, dataset: str, *more: str, workers: int = 1) -> Result:
        return cli("scan", str(directory), "--dataset", dataset, "--workers", str(workers), *more)

    return run


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files whose labels were loaded (in this process: use --workers 1)."""
    calls: list[str] = []
    real = npz.load_labels

    def counting(path: Path) -> Any:
        calls.append(path.name)
        return real(path)

    monkeypatch.setattr(npz, "load_labels", counting)
    return calls


def current_snapshot(client: TestClient, dataset: str) -> dict[str, Any] | None:
    answer = client.get(f"/api/v1/datasets/{dataset}")
    assert answer.status_code == 200, answer.text
    snapshot: dict[str, Any] | None = answer.json()["current_snapshot"]
    return snapshot


# -- what a scan produces ------------------------------------------------------------------------


def test_scan_matches_brute_force(
    run_scan: Any, client: TestClient, cache: Path, tmp_path: Path
) -> None:
    expected = scan_cache.brute_force(cache)
    assert expected["left_out"] == set(BAD_FILES)
    manifest_path = tmp_path / "manifest.json"
    result = run_scan(cache, "t", "--write-manifest", str(manifest_path), workers=2)
    assert result.exit_code == 0, result.output

    assert manifest_path.read_text() == expected["manifest_json"]
    for name, code in BAD_FILES.items():
        assert f"skipped {name}: {code}: " in result.output
    assert "other.npz" not in result.output

    snapshot = current_snapshot(client, "t")
    assert snapshot is not None
    assert snapshot["counts"]["partial_seizure"] == expected["counts"]["partial_seizure"]
    assert snapshot["counts"]["full_seizure"] == expected["counts"]["full_seizure"]
    assert snapshot["counts"]["no_seizure"] == expected["counts"]["no_seizure"]
    assert snapshot["has_sample_counts"] is True

    stats = client.get("/api/v1/datasets/t/stats").json()
    assert stats["samples"] == {"positive": expected["positive"], "total": expected["total"]}
    assert stats["sample_ratio"] == expected["positive"] / expected["total"]
    sample_basis = client.get("/api/v1/datasets/t/stats?basis=sample").json()
    assert sample_basis["basis"] == "sample"

    # The snapshot is exactly what importing the brute-force manifest (with counts) gives.
    body = json.dumps(expected["manifest"]).encode()
    assert parse_manifest(io.BytesIO(body)).content_hash == snapshot["content_hash"]

    issues = client.get(f"/api/v1/datasets/t/snapshots/{snapshot['id']}/scan-issues").json()
    assert {i["cache_file"]: i["code"] for i in issues["issues"]} == BAD_FILES
    assert all(i["reason"] for i in issues["issues"])


def test_scan_uses_the_dataset_threshold(run_scan: Any, client: TestClient, cache: Path) -> None:
    created = client.post("/api/v1/datasets", json={"name": "half", "full_threshold": 0.5})
    assert created.status_code == 201, created.text
    result = run_scan(cache, "half")
    assert result.exit_code == 0, result.output
    expected = scan_cache.brute_force(cache, threshold=0.5)
    counts = current_snapshot(client, "half")["counts"]  # type: ignore[index]
    assert counts["full_seizure"] == expected["counts"]["full_seizure"]
    assert counts["partial_seizure"] == expected["counts"]["partial_seizure"]


def test_bad_files_alone_are_a_clear_error(run_scan: Any, tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "x_s001_t000_windows.npz").write_bytes(b"nope")
    result = run_scan(directory, "t")
    assert result.exit_code == 1
    assert "no usable window" in result.output
    assert "x_s001_t000_windows.npz: unreadable" in result.output


# -- incremental ---------------------------------------------------------------------------------


def test_the_fields_copied_by_name_are_all_that_a_record_and_a_result_share() -> None:
    """A stored record, its wire form and a file's result: the fields all three hold under one
    name are copied by name, so that list must be exactly those (a renamed or added field
    would otherwise be lost silently); the name and the counts are converted by hand."""
    shared = (
        {f.name for f in dataclasses.fields(FileResult)}
        & set(ScanFileRecordOut.model_fields)
        & set(ScanFile.__table__.columns.keys())
    )
    assert shared - {"n_pos"} == set(SAME_NAMED_FIELDS)


def test_unchanged_rescan_loads_no_file(
    run_scan: Any, client: TestClient, cache: Path, load_calls: list[str]
) -> None:
    assert run_scan(cache, "t").exit_code == 0
    scanned = sorted(p.name for p in cache.glob("*_windows.npz"))
    assert sorted(load_calls) == scanned
    first = current_snapshot(client, "t")

    load_calls.clear()
    again = run_scan(cache, "t", "--json")
    assert again.exit_code == 0, again.output
    assert load_calls == []
    summary = json.loads(again.stdout)
    assert summary["read"] == 0
    assert summary["reused"] == len(scanned)
    assert summary["snapshot_created"] is False
    assert {i["cache_file"]: i["code"] for i in summary["issues"]} == BAD_FILES
    assert current_snapshot(client, "t") == first


def test_changed_file_is_reread_and_vanished_file_marked_missing(
    run_scan: Any, client: TestClient, cache: Path, tmp_path: Path, load_calls: list[str]
) -> None:
    assert run_scan(cache, "t").exit_code == 0
    names = sorted(p.name for p in cache.glob("*_windows.npz") if p.name not in BAD_FILES)
    changed, vanished = cache / names[1], cache / names[2]
    stat = changed.stat()
    labels = np.ones((3, scan_cache.WINDOW), dtype=np.float32)
    scan_cache.save(changed, labels)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    vanished.unlink()

    load_calls.clear()
    manifest_path = tmp_path / "manifest.json"
    result = run_scan(cache, "t", "--write-manifest", str(manifest_path))
    assert result.exit_code == 0, result.output
    assert load_calls == [changed.name]
    assert "missing 1" in result.output

    expected = scan_cache.brute_force(cache)
    assert manifest_path.read_text() == expected["manifest_json"]
    recordings = {
        r["cache_file"]: r["present"] for r in client.get("/api/v1/datasets/t/recordings").json()
    }
    assert recordings[vanished.name] is False
    assert recordings[changed.name] is True
    # The older snapshot, pinned, now counts the vanished file's windows as missing.
    snapshots = client.get("/api/v1/datasets/t/snapshots").json()
    assert len(snapshots) == 2
    old = client.get(f"/api/v1/datasets/t/stats?snapshot={snapshots[1]['id']}").json()
    assert old["missing_recordings"] == 1
    assert old["missing_windows"] > 0
    current = client.get("/api/v1/datasets/t/stats").json()
    assert current["missing_windows"] == 0
    assert current["samples"]["positive"] == expected["positive"]


def test_unchanged_rescan_opens_no_npz_file(database_url: str, cache: Path) -> None:
    """Traced for real: the second scan's process (and children) open no .npz at all."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    env = os.environ | {"DATABASE_URL": database_url}
    command = [sys.executable, "-m", "app", "scan", str(cache), "--dataset", "t", "--workers", "2"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    log = cache.parent / "strace.log"
    traced = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(log), *command],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if traced.returncode != 0 and "ptrace" in traced.stderr:
        pytest.skip(f"strace cannot trace here: {traced.stderr.strip()[:200]}")
    assert traced.returncode == 0, traced.stderr
    opened = [line for line in log.read_text().splitlines() if ".npz" in line]
    assert opened == []
    assert "read 0 of" in traced.stderr


# -- shards --------------------------------------------------------------------------------------


def push(client: TestClient, dataset: str, part: Any) -> Any:
    body = gzip.compress(part.model_dump_json().encode())
    return client.post(
        f"/api/v1/datasets/{dataset}/scan-parts",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


def make_part(cache: Path, index: int, count: int, scan_id: str) -> Any:
    listing = list_cache_dir(cache, shard=(index, count))
    part, _ = scan_part(plan_scan(listing, {}), scan_id=scan_id, shard=(index, count), workers=1)
    return part


def test_sharded_scan_equals_one_scan(run_scan: Any, client: TestClient, cache: Path) -> None:
    assert run_scan(cache, "whole").exit_code == 0
    whole = current_snapshot(client, "whole")
    assert whole is not None

    parts = [make_part(cache, i, 3, "s1") for i in range(3)]
    assert sorted(f.cache_file for p in parts for f in p.files) == sorted(
        p.name for p in cache.glob("*_windows.npz")
    )
    for i in (2, 0):
        answer = push(client, "sharded", parts[i])
        assert answer.status_code == 202, answer.text
        assert answer.json()["complete"] is False
        # Never a partial snapshot.
        assert current_snapshot(client, "sharded") is None
        assert client.get("/api/v1/datasets/sharded/snapshots").json() == []
    again = push(client, "sharded", parts[0])
    assert again.status_code == 202
    assert again.json()["parts_received"] == [0, 2]

    done = push(client, "sharded", parts[1])
    assert done.status_code == 200, done.text
    scan = done.json()
    assert scan["complete"] is True
    assert scan["snapshot"]["content_hash"] == whole["content_hash"]
    assert {i["cache_file"]: i["code"] for i in scan["issues"]} == BAD_FILES

    repeat = push(client, "sharded", parts[1])
    assert repeat.status_code == 200
    assert repeat.json()["snapshot"]["id"] == scan["snapshot"]["id"]
    assert len(client.get("/api/v1/datasets/sharded/snapshots").json()) == 1
    assert client.get("/api/v1/datasets/sharded/scans/s1").json()["complete"] is True


def test_sharded_cli_scans_equal_one_scan(run_scan: Any, client: TestClient, cache: Path) -> None:
    assert run_scan(cache, "whole").exit_code == 0
    for i in range(2):
        result = run_scan(cache, "parts", "--shard", f"{i}/2", "--scan-id", "nightly")
        assert result.exit_code == 0, result.output
        if i == 0:
            assert "1 of 2 parts received" in result.output
    whole, parts = current_snapshot(client, "whole"), current_snapshot(client, "parts")
    assert whole is not None
    assert parts is not None
    assert parts["content_hash"] == whole["content_hash"]


def test_part_problems_are_refused(client: TestClient, cache: Path) -> None:
    part = make_part(cache, 0, 2, "s2")
    wrong_shard = part.model_copy(update={"shard_index": 1})
    answer = push(client, "p", wrong_shard)
    assert answer.status_code == 422
    assert "belongs to shard 0/2" in answer.json()["detail"]

    assert push(client, "p", part).status_code == 202
    other_count = make_part(cache, 0, 3, "s2")
    answer = push(client, "p", other_count)
    assert answer.status_code == 409
    assert "has 2 parts" in answer.json()["detail"]

    bad_counts = part.model_copy(deep=True)
    ok_entry = next(f for f in bad_counts.files if f.status == "ok")
    ok_entry.n_pos[0] = ok_entry.n_samples + 1
    answer = push(client, "p", bad_counts)
    assert answer.status_code == 422
    assert "outside 0..n_samples" in answer.json()["detail"]

    assert push(client, "p", make_part(cache, 1, 2, "s2")).status_code == 200
    changed = part.model_copy(update={"other_files": []})
    if part.other_files:
        answer = push(client, "p", changed)
        assert answer.status_code == 409
        assert "already assembled" in answer.json()["detail"]
    reused_unknown = part.model_copy(deep=True)
    reused_unknown.scan_id = "s3"
    entry = reused_unknown.files[0]
    entry.status, entry.n_pos, entry.n_samples, entry.reason = "reused", [], 0, ""
    entry.size += 1
    answer = push(client, "p", reused_unknown)
    assert answer.status_code == 409
    assert "no matching scan record" in answer.json()["detail"]


def test_scan_through_the_service(
    run_scan: Any, client: TestClient, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--url: parts go over HTTP; a re-scan reuses the service's records; manifest is exact."""

    def to_app(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    transport = httpx.MockTransport(to_app)  # the client talks to the in-process app
    real_client = seizure_stats.client.SeizureStatsClient

    def in_process(*args: Any, **kwargs: Any) -> Any:
        return real_client(*args, **kwargs, transport=transport)

    monkeypatch.setattr(seizure_stats.client, "SeizureStatsClient", in_process)
    manifest_path = tmp_path / "manifest.json"
    url = "http://testserver"
    first = run_scan(cache, "r", "--url", url)
    assert first.exit_code == 0, first.output
    calls: list[str] = []
    monkeypatch.setattr(npz, "load_labels", lambda path: calls.append(path.name))
    again = run_scan(cache, "r", "--url", url, "--json", "--write-manifest", str(manifest_path))
    assert again.exit_code == 0, again.output
    assert calls == []
    summary = json.loads(again.stdout)
    assert summary["reused"] == summary["files"]
    assert summary["snapshot_created"] is False
    assert manifest_path.read_text() == scan_cache.brute_force(cache)["manifest_json"]


# -- verify --------------------------------------------------------------------------------------


def test_verify_reports_missing_and_unexpected_files(
    cli: Any, run_scan: Any, client: TestClient, cache: Path
) -> None:
    assert run_scan(cache, "t").exit_code == 0
    before = client.get("/api/v1/datasets/t/stats").json()
    good = sorted(p.name for p in cache.glob("*_windows.npz") if p.name not in BAD_FILES)
    (cache / good[0]).unlink()
    scan_cache.save(cache / "new_s001_t000_windows.npz", np.zeros((2, scan_cache.WINDOW)))
    result = cli("verify", str(cache), "--dataset", "t")
    assert result.exit_code == 0, result.output
    assert f"missing: {good[0]}" in result.output
    assert "unexpected: new_s001_t000_windows.npz" in result.output
    after = client.get("/api/v1/datasets/t/stats").json()
    assert after["missing_recordings"] == 1
    assert after["counts"]["total"] + after["missing_windows"] == before["counts"]["total"]


# -- reading single files ------------------------------------------------------------------------


def read(path: Path) -> Any:
    return npz.read_cache_file((str(path), path.name, 0, 0))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([[0, 0.5, -1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=np.float32),
        np.array([[0, 2, -3, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=np.int16),
        np.array([[0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool),
        np.asfortranarray(np.array([[0, 0.1, -0.0, 0], [1, 1, 1, np.inf], [0, -np.inf, 0, 0]])),
        np.array([[0, 0.5, 0], [1, 1, 1], [0, 0, 0]], dtype=np.float16),
    ],
)
@pytest.mark.parametrize("compressed", [True, False])
def test_reader_counts_like_a_loop(tmp_path: Path, labels: Any, compressed: bool) -> None:
    path = tmp_path / "a_windows.npz"
    (np.savez_compressed if compressed else np.savez)(path, labels=labels, windows=np.zeros(3))
    result = read(path)
    assert result.ok, result.reason
    assert result.n_samples == labels.shape[1]
    assert result.n_pos.tolist() == [sum(1 for v in row if v > 0) for row in labels.tolist()]
    assert (result.size, result.mtime_ns) == (path.stat().st_size, path.stat().st_mtime_ns)


def test_reader_never_raises(tmp_path: Path) -> None:
    directory = scan_cache.build_cache(tmp_path / "c", recordings=2)
    for name, code in BAD_FILES.items():
        result = read(directory / name)
        expected = "ok" if code == "length_mismatch" else code
        assert result.status == expected, (name, result.reason)
    missing = read(directory / "gone_windows.npz")
    assert missing.status == "unreadable"
    assert "cannot read" in missing.reason


def test_issue_codes_match_the_wire_schema() -> None:
    assert {c.value for c in IssueCode} == set(IssueCodeName.__args__)


def same_results(a: FileResult, b: FileResult) -> bool:
    for name in (f.name for f in dataclasses.fields(FileResult)):
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            if x.dtype != y.dtype or x.tolist() != y.tolist():
                return False
        elif (x, type(x) is bool) != (y, type(y) is bool):
            return False
    return True


def test_a_waiting_part_keeps_every_field_of_its_results() -> None:
    """A part waits in the database as JSON until its scan is whole; what comes back out is
    what went in, reused flag and issue code included."""
    results = [
        FileResult("a_windows.npz", 10, -5, OK, "", 256, np.array([0, 3, 256], dtype=np.int32)),
        FileResult("b_windows.npz", 2**40, 2**62, IssueCode.NAN_LABELS, "labels hold NaN"),
        FileResult("c_windows.npz", 7, 8, OK, "", 512, np.array([1], dtype=np.int32), True),
    ]
    for result in results:
        assert same_results(from_stored(json.loads(json.dumps(as_stored(result)))), result)
    files, others = parts._decode(parts._encode(results, ["notes.txt"]))
    assert others == ["notes.txt"]
    assert all(same_results(a, b) for a, b in zip(files, results, strict=True))


def test_a_part_stored_by_an_earlier_version_still_decodes() -> None:
    """The stored form, written out as it has been since scans came in parts: a part stored
    before an upgrade is assembled after it."""
    stored = {
        "files": [
            {
                "name": "a_windows.npz",
                "size": 10,
                "mtime_ns": 20,
                "status": "ok",
                "reason": "",
                "n_samples": 256,
                "n_pos": [0, 7],
                "reused": True,
            },
            {
                "name": "b_windows.npz",
                "size": 3,
                "mtime_ns": 4,
                "status": "no_labels",
                "reason": "no labels member",
                "n_samples": 0,
                "n_pos": [],
                "reused": False,
            },
        ],
        "others": ["README"],
    }
    files, others = parts._decode(zlib.compress(json.dumps(stored).encode(), 6))
    assert others == ["README"]
    assert same_results(
        files[0], FileResult("a_windows.npz", 10, 20, OK, "", 256, np.array([0, 7], np.int32), True)
    )
    assert same_results(
        files[1], FileResult("b_windows.npz", 3, 4, IssueCode.NO_LABELS, "no labels member")
    )


def test_shards_partition_names() -> None:
    names = [f"p{i}_s001_t000_windows.npz" for i in range(200)]
    shards = [shard_of(n, 4) for n in names]
    assert set(shards) == {0, 1, 2, 3}
    assert parse_shard("3/4") == (3, 4)
    for text in ("4/4", "x/2", "1", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(text)
