"""ETags, 304s and the per-process answer cache: answers follow the current snapshot and presence."""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.api.answer_cache import (
    ENTRY_OVERHEAD_BYTES,
    Answer,
    AnswerCache,
    DatasetState,
    DatasetStates,
    make_question,
)
from app.config import Settings
from app.db import make_engine, make_session_factory, write_session
from app.ingest.presence import apply_presence
from app.main import create_app
from seizure_stats.schemas.questions import StatsQuery
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.servers import live_server
from tests.support.uploads import load

STATS = "/api/v1/datasets/ds/stats"
SNAPSHOTS = "/api/v1/datasets/ds/snapshots"


def post(client: TestClient, manifest: dict[str, object]) -> int:
    return load(client, "ds", manifest, expect=(200, 201))


def test_the_cache_is_bounded_by_bytes_and_evicts_the_least_recent() -> None:
    cost = 1000 + ENTRY_OVERHEAD_BYTES
    cache = AnswerCache(max_entries=100, max_bytes=3 * cost)
    keys = [("stats", 1, (1,), 0, f"{n:064x}") for n in range(5)]
    for key in keys[:3]:
        cache.put(key, Answer(b"x" * 1000))
    assert (len(cache), cache.size_bytes) == (3, 3 * cost)
    assert cache.get(keys[0]) == Answer(b"x" * 1000)  # now the most recent
    cache.put(keys[3], Answer(b"y" * 1000))
    assert (len(cache), cache.size_bytes) == (3, 3 * cost)
    assert cache.get(keys[1]) is None  # the least recent went
    assert [cache.get(k) is not None for k in (keys[0], keys[2], keys[3])] == [True] * 3
    cache.put(keys[3], Answer(b"z" * 10))  # replacing an entry counts its new size only
    assert cache.size_bytes == 2 * cost + 10 + ENTRY_OVERHEAD_BYTES
    cache.put(keys[4], Answer(b"w" * (3 * cost)))  # larger than the whole budget: not kept
    assert cache.get(keys[4]) is None
    assert len(cache) == 3
    by_entries = AnswerCache(max_entries=2, max_bytes=10**9)
    for key in keys[:3]:
        by_entries.put(key, Answer(b"v"))
    assert [by_entries.get(k) for k in keys[:3]] == [None, Answer(b"v"), Answer(b"v")]
    assert AnswerCache(max_entries=0).get(keys[0]) is None


def test_cache_keys_are_digests_and_etags_stay_stable() -> None:
    state = DatasetState(dataset_id=1, current_snapshot_id=7, presence_version=0)
    names = [f"r{i:06d}_windows.npz" for i in range(20_000)]
    question = make_question("stats", "ds", state, StatsQuery(recording=names))
    digest = question.key[-1]
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    same = make_question("stats", "ds", state, StatsQuery(recording=list(reversed(names))))
    assert same.key == question.key
    assert same.etag == question.etag
    other = make_question("stats", "ds", state, StatsQuery(recording=names[1:]))
    assert other.etag != question.etag


def test_etag_and_not_modified(client: TestClient) -> None:
    post(client, manifests.SMALL)
    first = client.get(STATS + "?patient=aaaaaaaa")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(STATS + "?patient=aaaaaaaa", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(STATS + "?patient=bbbbbbbb", headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


def test_equal_filters_share_an_etag(client: TestClient) -> None:
    post(client, manifests.SMALL)
    a = client.get(STATS + "?patient=bbbbbbbb,aaaaaaaa&category=seizure")
    b = client.get(
        STATS + "?patient=aaaaaaaa&patient=bbbbbbbb&category=full_seizure,partial_seizure"
    )
    assert a.headers["etag"] == b.headers["etag"]
    assert a.json() == b.json()
    posted = client.post(STATS, json={"patient": ["aaaaaaaa", "bbbbbbbb"], "category": ["seizure"]})
    assert posted.headers["etag"] == a.headers["etag"]


def test_pinned_snapshot_may_be_cached(client: TestClient) -> None:
    first = post(client, manifests.SMALL)
    pinned = client.get(f"{STATS}?snapshot={first}")
    assert pinned.headers["cache-control"] == "public, max-age=300"


def test_a_new_current_snapshot_changes_the_answer_and_etag(client: TestClient) -> None:
    post(client, manifests.SMALL)
    before = client.get(STATS)
    assert before.json()["counts"]["total"] == 12
    other = manifests.generated(6)
    post(client, other)
    after = client.get(STATS, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["counts"] == oracle.expected_stats(other, set())["counts"]
    balanced_after = client.get("/api/v1/datasets/ds/balanced").json()
    assert balanced_after["snapshot"] == after.json()["snapshot"]
    post(client, manifests.SMALL)  # re-import: the first snapshot is current again
    assert client.get(STATS).json() == before.json()


def test_presence_updates_change_cached_answers(client: TestClient) -> None:
    post(client, manifests.SMALL)
    before = client.get(STATS)
    balanced_before = client.get("/api/v1/datasets/ds/balanced").json()
    client.post(
        "/api/v1/datasets/ds/presence", json={"missing": ["aaaaaaaa_s002_t000_windows.npz"]}
    )
    after = client.get(STATS, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["missing_windows"] == 4
    balanced_after = client.get("/api/v1/datasets/ds/balanced").json()
    assert (
        balanced_after["counts"]["partial_seizure"]
        == balanced_before["counts"]["partial_seizure"] - 1
    )


def test_index_supports_etags(client: TestClient) -> None:
    post(client, manifests.SMALL)
    first = client.get("/api/v1/datasets/ds/balanced/index")
    assert first.status_code == 200
    again = client.get(
        "/api/v1/datasets/ds/balanced/index", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    as_json = client.get("/api/v1/datasets/ds/balanced/index?format=json")
    assert as_json.headers["etag"] != first.headers["etag"]


def test_writes_from_another_process_are_seen(client: TestClient, database_url: str) -> None:
    """An import through another engine (as the CLI or another worker would) shows up."""
    import io
    import time

    from app.db import make_engine, make_session_factory, run_write
    from app.ingest.importer import prepare_import, store_import

    post(client, manifests.SMALL)
    assert client.get(STATS).json()["counts"]["total"] == 12
    other = manifests.generated(12)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        prepared = prepare_import(factory, "ds", io.BytesIO(json.dumps(other).encode()))
        outcome = run_write(factory, partial(store_import, prepared=prepared))
    finally:
        engine.dispose()
    # SQLite sees it on the next request; Postgres once the NOTIFY arrives (milliseconds).
    deadline = time.monotonic() + 2
    while client.get(STATS).json()["snapshot"] != outcome.snapshot.id:
        assert time.monotonic() < deadline, "the new snapshot never became visible"
        time.sleep(0.01)
    assert client.get(STATS).json()["counts"] == oracle.expected_stats(other, set())["counts"]


# What 100 cold answers to long-filter questions may leave behind in a server process. The
# answers themselves are a few hundred bytes; what remains is the allocator's working set.
LONG_FILTER_RSS_BOUND = 64 * 1024**2


@pytest.mark.e2e
@pytest.mark.slow
def test_long_filter_answers_leave_memory_bounded(database_url: str, tmp_path: Path) -> None:
    """Distinct questions of 100,000 long recording names each: the cache keeps digests of them,
    not the filters, so the process does not grow with every one (it grew ~20 MB a question)."""
    token = make_token(database_url, "cache-writer", "write")
    with live_server(database_url, tmp_path) as server, httpx.Client(timeout=120) as http:
        load(server.url, "ds", manifests.SMALL, token=token)
        expected = oracle.expected_stats(manifests.SMALL, set(), {"recording": ["nothing"]})

        def ask(number: int) -> httpx.Response:
            names = [f"q{number:03d}-{i:06d}-{'x' * 40}_windows.npz" for i in range(100_000)]
            return http.post(f"{server.url}{STATS}", json={"recording": names})

        ask(0)  # the first one warms up what every later one reuses
        before = server.rss_bytes()
        for number in range(1, 101):
            response = ask(number)
            assert response.status_code == 200, response.text
            assert response.json()["counts"] == expected["counts"]
        grown = server.rss_bytes() - before
        assert grown < LONG_FILTER_RSS_BOUND, f"RSS grew by {grown / 2**20:.0f} MiB"
        again = ask(100)
        assert again.headers["etag"] == response.headers["etag"]


def test_a_presence_update_between_question_and_answer_is_not_cached_under_the_old_key(
    settings: Settings, write_token: str, database_url: str
) -> None:
    """The question's key names the presence version read first; the answer is computed in a
    later transaction. A presence update committed in between is in the answer, so the answer
    must not be kept (nor tagged) as the answer at the older version."""
    writer_engine = make_engine(database_url)
    armed = threading.Event()

    def mark_missing_between(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Right after the dataset's state (current snapshot, presence version) is read.
        if armed.is_set() and "presence_version" in statement and "FROM datasets" in statement:
            armed.clear()
            with write_session(make_session_factory(writer_engine)) as session:
                dataset = catalog.get_dataset(session, "ds")
                apply_presence(session, dataset, {"aaaaaaaa_s002_t000_windows.npz": False})

    application = create_app(settings)
    headers = {"Authorization": f"Bearer {write_token}"}
    try:
        with TestClient(application, headers=headers) as client:
            post(client, manifests.SMALL)
            event.listen(application.state.engine, "after_cursor_execute", mark_missing_between)
            armed.set()
            raced = client.get(STATS, params={"patient": "aaaaaaaa"})
            assert not armed.is_set(), "the dataset's state was not read"
            event.remove(application.state.engine, "after_cursor_execute", mark_missing_between)
            assert raced.status_code == 200
            assert raced.json()["missing_windows"] == 4  # the update is in this answer
            assert "etag" not in raced.headers
            assert len(application.state.answer_cache) == 0
            again = client.get(STATS, params={"patient": "aaaaaaaa"})
            assert again.json() == raced.json()
            assert "etag" in again.headers
            assert len(application.state.answer_cache) == 1
    finally:
        writer_engine.dispose()


class Unchanging:
    """A change signal that never reports a write: only the process's own commits count."""

    def token(self) -> object:
        return 0

    def close(self) -> None:
        pass


def test_a_dataset_state_read_while_this_process_commits_is_not_remembered(
    factory: sessionmaker[Session],
) -> None:
    """On Postgres the signal's token moves only when the write's notification arrives, a
    moment after the commit: a state read meanwhile may predate the write, so the count of this
    process's own commits decides whether it is remembered."""
    with write_session(factory) as session:
        catalog.create_dataset(session, "ds")
    states = DatasetStates(factory, Unchanging())
    armed = threading.Event()

    def commit_between(session: Session, *_: Any) -> None:
        if armed.is_set():
            armed.clear()
            with write_session(factory) as writer:
                catalog.get_dataset(writer, "ds").description = "changed meanwhile"

    event.listen(factory, "do_orm_execute", commit_between)
    try:
        armed.set()
        raced = states.load("ds")
        assert not armed.is_set(), "the dataset's state was not read"
        assert states.remembered("ds") is None
        assert states.load("ds") == raced  # nothing that the state holds changed
        assert states.remembered("ds") == raced
    finally:
        event.remove(factory, "do_orm_execute", commit_between)
