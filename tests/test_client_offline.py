"""The client's offline answers: a real server stopped in the middle of a test still answers,
from the client's cache, exactly what it answered live; offline mode sends nothing."""

from __future__ import annotations

import gzip
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from seizure_stats.client import (
    APIError,
    NotCachedError,
    OfflineError,
    SeizureStatsClient,
    ServiceUnavailableError,
    UnmatchedFilterWarning,
)
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.answers import stats_body
from tests.support.servers import LiveServer


def upload(client: SeizureStatsClient, dataset: str, manifest: dict[str, Any]) -> int:
    imported = client.import_manifest(dataset, io.BytesIO(json.dumps(manifest).encode()))
    return imported.id


def index_pairs(entries: Any) -> list[tuple[str, int]]:
    return [(e.cache_file, e.window_idx) for e in entries]


def array_pairs(arrays: Any) -> list[tuple[str, int]]:
    names = arrays["cache_files"]
    return [
        (str(names[r]), int(w))
        for r, w in zip(arrays["recording"], arrays["window_idx"], strict=True)
    ]


def cached_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


@pytest.mark.e2e
def test_a_stopped_server_still_gives_the_answers_it_gave_live(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = manifests.generated(23, recordings=48)
    names = manifests.recordings_of(manifest)
    missing = set(names[:2])
    held_out = oracle.names_of(names[7])[1]
    long_filter = names[3:40] + [f"gone_{i}" for i in range(90)]  # > 100 values: a POST body
    cache = tmp_path / "cache"

    server = LiveServer(database_url, tmp_path)
    token = make_token(database_url, "offline-writer", "write")
    client = SeizureStatsClient(server.url, token=token, retries=2, backoff=0.01, cache_dir=cache)
    server.start()
    try:
        first = upload(client, "tusz-train", manifest)
        client.report_presence("tusz-train", missing=sorted(missing))

        live = {
            "stats": client.stats("tusz-train", exclude_patient=held_out),
            "long": client.stats("tusz-train", recording=long_filter, strict=False),
            "pinned": client.stats("tusz-train", snapshot=first, weighting="linear"),
            "balanced": client.balanced("tusz-train", exclude_patient=held_out, seed=3),
            "folds": client.folds("tusz-train", k=3, seed=5),
        }
        index = client.balanced_index("tusz-train", exclude_patient=held_out, seed=3)
        live_index = index_pairs(index)
        live_arrays = client.balanced_index_arrays("tusz-train", seed=3)
        with pytest.warns(UnmatchedFilterWarning):
            live_unmatched_index = index_pairs(
                client.balanced_index("tusz-train", recording=long_filter, strict=False)
            )

        # The live answers are right (an independent count), so the cached ones are worth having.
        expected = oracle.expected_stats(manifest, missing, {"exclude_patient": [held_out]})
        assert live["stats"].counts.model_dump() == expected["counts"]
        assert live["stats"].pos_weight == expected["pos_weight"]
        counts, order = oracle.expected_balanced(
            manifest, missing, {"exclude_patient": [held_out]}, seed=3
        )
        assert live["balanced"].counts.total == sum(counts.values()) == len(order)
        assert live_index == order
        assert array_pairs(live_arrays) == oracle.expected_balanced(manifest, missing, seed=3)[1]
        assert not any(answer.from_cache for answer in live.values())
        assert (index.from_cache, index.snapshot, live_arrays.from_cache) == (False, first, False)

        # A new snapshot becomes current; the cache still holds what was asked before it.
        later = manifests.generated(24, recordings=30)
        second = upload(client, "tusz-train", later)
        assert second != first
        # Another job (a cache of its own) asks about the first snapshot, pinned, while it can.
        with SeizureStatsClient(server.url, cache_dir=tmp_path / "other") as other:
            pinned_first = other.stats("tusz-train", snapshot=first, exclude_patient=held_out)
    finally:
        server.stop()

    # The server is gone: the same questions get the same answers, marked as cached.
    caplog.set_level(logging.WARNING, logger="seizure_stats")
    again = {
        "stats": client.stats("tusz-train", exclude_patient=[held_out]),
        "long": client.stats("tusz-train", recording=list(reversed(long_filter)), strict=False),
        "pinned": client.stats("tusz-train", snapshot=first, weighting="linear"),
        "balanced": client.balanced("tusz-train", exclude_patient=held_out, seed=3),
        "folds": client.folds("tusz-train", k=3, seed=5),
    }
    for name, answer in again.items():
        assert answer.model_dump() == live[name].model_dump(), name
        assert answer.from_cache, name
        assert answer.cached_at is not None
    # "Current" offline is the snapshot that was current when the answer was received.
    assert again["stats"].snapshot == first
    warned = [r.getMessage() for r in caplog.records if r.name == "seizure_stats"]
    assert len(warned) == len(again)
    assert all("the service cannot answer" in message for message in warned)
    assert f"snapshot {first} ({live['stats'].content_hash}), the dataset's current" in warned[0]
    assert "may have made another one current since" in warned[0]
    assert f"snapshot {first} ({live['pinned'].content_hash}), as pinned" in warned[2]

    index = client.balanced_index("tusz-train", exclude_patient=held_out, seed=3)
    assert index_pairs(index) == live_index
    assert (index.from_cache, index.snapshot) == (True, first)
    cached_unmatched = client.balanced_index("tusz-train", recording=long_filter, strict=False)
    with pytest.warns(UnmatchedFilterWarning, match="90 filter value"):
        listed = index_pairs(cached_unmatched)
    assert listed == live_unmatched_index
    arrays = client.balanced_index_arrays("tusz-train", seed=3)
    assert arrays.from_cache
    for column in ("cache_files", "recording", "window_idx"):
        assert np.array_equal(arrays[column], live_arrays[column])
        assert arrays[column].dtype == live_arrays[column].dtype

    # The first snapshot, pinned, was never asked by this job, but the unpinned answer it got
    # while the first snapshot was current answers it exactly.
    pinned = client.stats("tusz-train", snapshot=first, exclude_patient=held_out)
    assert pinned.from_cache
    assert pinned.model_dump() == pinned_first.model_dump()
    # About the second snapshot this job knows nothing: the error it always had, with a note.
    with pytest.raises(ServiceUnavailableError) as unreachable:
        client.stats("tusz-train", snapshot=second)
    assert f"the cache at {cache} has no answer" in "".join(unreachable.value.__notes__)

    # Offline, nothing is sent: a client pointed at the stopped server answers at once (its
    # four retries would take seconds), and one given a transport never calls it.
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ConnectError("refused", request=request)

    started = time.monotonic()
    with (
        SeizureStatsClient(server.url, cache_dir=cache, offline=True) as offline,
        SeizureStatsClient(
            server.url, cache_dir=cache, offline=True, transport=httpx.MockTransport(record)
        ) as counted,
    ):
        for asking in (offline, counted):
            assert asking.stats("tusz-train", exclude_patient=held_out).model_dump() == (
                live["stats"].model_dump()
            )
            assert asking.folds("tusz-train", k=3, seed=5).from_cache
            assert (
                index_pairs(asking.balanced_index("tusz-train", exclude_patient=held_out, seed=3))
                == live_index
            )
            assert array_pairs(asking.balanced_index_arrays("tusz-train", seed=3)) == (
                array_pairs(live_arrays)
            )
            with pytest.raises(NotCachedError, match=f"the cache at {cache} has no answer"):
                asking.balanced("tusz-train", seed=4)
            with pytest.raises(OfflineError, match="not sent"):
                asking.datasets()
    assert time.monotonic() - started < 2
    assert sent == []
    client.close()


def test_offline_mode_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, client_cache: Path
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1


STATS_BODY = stats_body(snapshot=4, content_hash="sha256:04")
INDEX_LINES = b'{"cache_file": "a_windows.npz", "window_idx": 2}\n{"cache_file": "b_windows.npz", "window_idx": 0}\n'
INDEX_HEADERS = {"X-Snapshot": "4", "X-Content-Hash": "sha256:04"}


def mock_client(handler: Any, **options: Any) -> SeizureStatsClient:
    return SeizureStatsClient(
        "http://stats.test",
        transport=httpx.MockTransport(handler),
        retries=2,
        backoff=0.001,
        **options,
    )


class FlakyService:
    """Answers with the statuses given, in turn (200: the answer; a number: that status;
    None: the connection refused), then keeps to the last one."""

    def __init__(self, *statuses: int | None, body: dict[str, Any] | None = None) -> None:
        self.statuses = list(statuses)
        self.body = body or STATS_BODY
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        if status != 200:
            return httpx.Response(status, json={"error": "e", "detail": f"status {status}"})
        if request.url.path.endswith("/balanced/index"):
            return httpx.Response(200, headers=INDEX_HEADERS, content=INDEX_LINES)
        return httpx.Response(200, json=self.body)


def test_5xx_after_the_retries_falls_back_to_the_cache_and_4xx_never_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = FlakyService(200, 503, 503, 503, 422, 502, 502, 502)
    with mock_client(service) as client:
        live = client.stats("d", patient=["p1"])
        cached = client.stats("d", patient=["p1"])  # three 503s: the retry budget spent
        assert cached.from_cache
        assert not live.from_cache
        assert cached.model_dump() == live.model_dump()
        assert "503 e: status 503" in caplog.text
        with pytest.raises(APIError) as refused:  # a 422 is an answer: the question is wrong
            client.stats("d", patient=["p1"])
        assert refused.value.status_code == 422
        assert client.stats("d", patient=["p1"]).from_cache  # 502s: unavailable again
    assert len(service.requests) == 1 + 3 + 1 + 3


def test_a_new_live_answer_replaces_the_cached_one(client_cache: Path) -> None:
    service = FlakyService(200, 200, None)
    with mock_client(service) as client:
        client.stats("d")
        service.body = STATS_BODY | {"snapshot": 5, "content_hash": "sha256:05"}
        client.stats("d")
        assert client.stats("d").snapshot == 5  # unreachable: the last answer received
    # The unpinned answer, and the same under the question pinned to snapshot 4, then 5.
    kept = [json.loads(path.read_text()) for path in cached_files(client_cache)]
    assert sorted(data["answer"]["snapshot"] for data in kept) == [4, 5, 5]
    assert all(data["record"]["snapshot"] == data["answer"]["snapshot"] for data in kept)


def test_the_cache_file_names_its_service_dataset_question_snapshot_and_hash(
    client_cache: Path,
) -> None:
    with mock_client(FlakyService(200)) as client:
        client.stats("d", patient=["p2", "p1"], snapshot=4)
    (path,) = cached_files(client_cache)
    assert path.relative_to(client_cache).parts[:1] == ("answers",)
    assert path.parent.parent.name.startswith("http_stats.test-")
    assert path.parent.name.startswith("d-")
    assert path.name.startswith("stats-")
    assert path.suffix == ".json"
    record = json.loads(path.read_text())["record"]
    assert record["service"] == "http://stats.test"
    assert record["dataset"] == "d"
    assert record["kind"] == "stats"
    assert record["question"] == {
        "basis": "window",
        "beta": "0.9999",
        "patient": ["p1", "p2"],
        "snapshot": "4",
        "strict": "true",
        "weighting": "sqrt",
    }
    assert (record["snapshot"], record["content_hash"]) == (4, "sha256:04")
    assert json.loads(path.read_text())["answer"] == STATS_BODY


def test_the_same_question_asked_another_way_is_the_same_question() -> None:
    service = FlakyService(200, None)
    with mock_client(service) as client:
        client.stats("d", patient=["p2", "p1", "p1"])
        assert client.stats("d", patient="p1,p2").from_cache
        assert client.stats("d", patient=[" p1", "p2"]).from_cache
        for other in (
            {"patient": "p1"},
            {"patient": "p1,p2", "strict": False},  # strict is answered apart, as by the service
            {"patient": "p1,p2", "weighting": "linear"},
            {"exclude_patient": "p1,p2"},
        ):
            with pytest.raises(ServiceUnavailableError):
                client.stats("d", **other)
        with pytest.raises(ServiceUnavailableError):  # another dataset
            client.stats("e", patient="p1,p2")
    with (
        SeizureStatsClient(
            "http://other.test",
            transport=httpx.MockTransport(service),
            retries=0,
        ) as elsewhere,
        pytest.raises(ServiceUnavailableError),
    ):
        elsewhere.stats("d", patient="p1,p2")  # another service


def test_an_index_read_in_part_is_not_kept(client_cache: Path) -> None:
    service = FlakyService(200, 200, None)
    with mock_client(service) as client:
        entries = client.balanced_index("d")
        assert next(entries).cache_file == "a_windows.npz"
        entries.close()
        assert cached_files(client_cache) == []
        assert len(index_pairs(client.balanced_index("d"))) == 2
        kept = cached_files(client_cache)
        # The file itself, and the same under the question pinned to snapshot 4.
        assert [p.name.endswith(".jsonl.gz") for p in kept] == [True, True]
        with gzip.open(kept[0], "rt") as handle:
            record = json.loads(handle.readline())
            assert [json.loads(line) for line in handle] == [
                json.loads(line) for line in INDEX_LINES.splitlines()
            ]
        assert (record["snapshot"], record["headers"]["x-snapshot"]) == (4, "4")
        cached = client.balanced_index("d")
        assert index_pairs(cached) == [("a_windows.npz", 2), ("b_windows.npz", 0)]
        assert (cached.from_cache, cached.snapshot, cached.content_hash) == (True, 4, "sha256:04")
        assert index_pairs(client.balanced_index("d", snapshot=4)) == index_pairs(
            client.balanced_index("d")
        )
    assert not [p for p in client_cache.rglob(".*") if p.is_file()]  # no temporary file left


def test_nothing_is_kept_with_the_cache_turned_off(client_cache: Path, tmp_path: Path) -> None:
    with mock_client(FlakyService(200, None), cache=False) as client:
        assert client.cache_dir is None
        client.stats("d")
        with pytest.raises(ServiceUnavailableError) as unreachable:
            client.stats("d")
        assert "turned off" in "".join(unreachable.value.__notes__)
    with (
        mock_client(FlakyService(200), cache=False, offline=True) as offline,
        pytest.raises(NotCachedError, match="turned off"),
    ):
        offline.stats("d")
    assert cached_files(client_cache) == []


def test_an_unreadable_cache_file_is_ignored(
    client_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mock_client(FlakyService(200, None)) as client:
        client.stats("d", snapshot=4)
        (path,) = cached_files(client_cache)
        path.write_text('{"record": {"format": 1}')
        with pytest.raises(ServiceUnavailableError):
            client.stats("d", snapshot=4)
    assert "ignoring an unusable cache file" in caplog.text


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    with mock_client(FlakyService(200), cache_dir=blocked) as client:
        assert client.stats("d").pos_weight == STATS_BODY["pos_weight"]
        assert len(index_pairs(client.balanced_index("d"))) == 2
    assert caplog.text.count("could not keep the") == 2


def test_the_default_cache_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEIZURE_STATS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with SeizureStatsClient("http://stats.test") as client:
        assert client.cache_dir == tmp_path / "xdg" / "seizure-stats"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with SeizureStatsClient("http://stats.test") as client:
        assert client.cache_dir == tmp_path / "home" / ".cache" / "seizure-stats"
    with SeizureStatsClient("http://stats.test", cache_dir=tmp_path / "mine") as client:
        assert client.cache_dir == tmp_path / "mine"


class WatchedBody(httpx.SyncByteStream):
    """An index answer's body that records whether the client closed it."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Any:
        yield INDEX_LINES

    def close(self) -> None:
        self.closed = True


def test_an_index_opened_and_never_read_leaves_no_file_and_no_connection(
    client_cache: Path,
) -> None:
    bodies: list[WatchedBody] = []

    def service(request: httpx.Request) -> httpx.Response:
        bodies.append(WatchedBody())
        return httpx.Response(200, headers=INDEX_HEADERS, stream=bodies[-1])

    with mock_client(service) as client:
        entries = client.balanced_index("d")
        assert (entries.snapshot, entries.from_cache) == (4, False)
        assert not [p for p in client_cache.rglob("*") if p.is_file()]
        entries.close()
        assert bodies[-1].closed
        entries = client.balanced_index("d")
        entries.close()  # closed before it was ever opened: nothing was asked
        assert len(bodies) == 1
        assert index_pairs(client.balanced_index("d")) == [
            ("a_windows.npz", 2),
            ("b_windows.npz", 0),
        ]
        assert bodies[-1].closed
    assert not [p for p in client_cache.rglob(".*") if p.is_file()]  # no temporary file left
    assert len(cached_files(client_cache)) == 2  # the whole index, under both its names


def test_without_a_home_directory_the_client_runs_without_a_cache(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("SEIZURE_STATS_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(Path, "home", no_home)
    with mock_client(FlakyService(200), cache=False) as uncached:
        assert uncached.cache_dir is None
    assert caplog.text == ""  # no cache asked for: none looked for
    with mock_client(FlakyService(200)) as client:
        assert client.cache_dir is None
        assert client.stats("d").pos_weight == STATS_BODY["pos_weight"]
    assert "answers are not kept" in caplog.text


def test_a_429_after_the_retries_falls_back_to_the_cache() -> None:
    service = FlakyService(200, 429)
    with mock_client(service) as client:
        live = client.stats("d")
        cached = client.stats("d")
        assert cached.from_cache
        assert cached.model_dump() == live.model_dump()
    assert len(service.requests) == 1 + 3


class CutBody(httpx.SyncByteStream):
    """An index answer whose connection is lost after its first line."""

    def __iter__(self) -> Any:
        yield INDEX_LINES.splitlines(keepends=True)[0]
        raise httpx.ReadError("connection reset by peer")


def test_a_connection_lost_in_the_middle_of_an_index_is_the_service_unavailable(
    client_cache: Path,
) -> None:
    def service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=INDEX_HEADERS, stream=CutBody())

    with mock_client(service) as client:
        entries = client.balanced_index("d")
        assert next(entries).cache_file == "a_windows.npz"
        with pytest.raises(ServiceUnavailableError, match="lost in the middle of the answer"):
            next(entries)
    assert cached_files(client_cache) == []  # an index read in part is never kept


def test_a_password_in_the_base_url_is_written_nowhere(
    client_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = FlakyService(200, None)
    with SeizureStatsClient(
        "http://reader:s3cret@stats.test",
        transport=httpx.MockTransport(service),
        retries=0,
    ) as client:
        client.stats("d")
        assert client.stats("d").from_cache
        with pytest.raises(ServiceUnavailableError) as unreachable:
            client.stats("e")
    assert service.requests[0].headers["authorization"].startswith("Basic ")  # still sent
    written = [path.read_text() for path in cached_files(client_cache)]
    assert len(written) == 2
    assert all('"service": "http://stats.test"' in text for text in written)
    assert "s3cret" not in "".join(written)
    assert "from http://stats.test" in caplog.text
    assert "s3cret" not in caplog.text
    assert "s3cret" not in str(unreachable.value)
    assert "reader" not in str(unreachable.value)


def test_the_warnings_leave_the_logger_name_to_the_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with mock_client(FlakyService(200, None)) as client:
        client.stats("d")
        assert client.stats("d").from_cache
    (record,) = caplog.records
    assert record.name == "seizure_stats"
    assert record.getMessage().startswith("the service cannot answer")
