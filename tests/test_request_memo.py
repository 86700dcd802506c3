"""The request memo: a GET asked again in the same words skips parsing, but none of the rules.

Each test counts the requests the memo answered (`seizure_stats_requests_remembered_total`),
so that it shows the memo was used, or that it was not, besides what was answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from app import catalog
from app.api.answer_cache import DatasetStates
from app.api.request_memo import MEMO_QUERY_BYTES, RequestMemo
from app.config import Settings
from app.db import make_engine, make_session_factory, write_session
from app.main import create_app
from app.models import ApiToken
from app.storage.commit_signal import change_signal
from tests.conftest import make_token
from tests.support import manifests, oracle, signals
from tests.support.at_once import asked_at_once
from tests.support.uploads import load

BASE = "/api/v1/datasets/ds"
STATS = f"{BASE}/stats"
# Headers that differ between any two responses, whatever answered them.
PER_RESPONSE = {"date", "x-request-id"}


def remembered(client: TestClient) -> int:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("seizure_stats_requests_remembered_total "):
            return int(float(line.rsplit(" ", 1)[1]))
    raise AssertionError("the metric is missing")


def settled(client: TestClient) -> None:
    """Wait until the process has heard of every commit so far: what it notes now stays trusted."""
    states: DatasetStates = client.app.state.dataset_states  # type: ignore[attr-defined]
    signals.settled(states.stamp)


def headers_of(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in PER_RESPONSE}


def describe_elsewhere(database_url: str, description: str) -> None:
    """Commit a write on a connection of its own, as another process would."""
    engine = make_engine(database_url)
    try:
        with write_session(make_session_factory(engine)) as session:
            catalog.get_dataset(session, "ds").description = description
    finally:
        engine.dispose()


def stats_of(client: TestClient, path: str = STATS) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_every_question_asked_again_gets_what_it_got_before(client: TestClient) -> None:
    manifest = manifests.generated(4, recordings=20, with_samples=True)
    a = load(client, "ds", manifests.generated(5, recordings=20, with_samples=True))
    b = load(client, "ds", manifest)
    patient = client.get(f"{BASE}/recordings").json()[0]["patient"]
    settled(client)
    paths = [
        f"{STATS}?patient={patient}",
        f"{BASE}/balanced?seed=3",
        f"{BASE}/balanced/index?seed=3&format=npz",
        f"{BASE}/balanced/index?format=json",
        f"{BASE}/breakdown?by=patient",
        f"{BASE}/breakdown?by=recording&format=csv",
        f"{BASE}/histogram?bins=5",
        f"{BASE}/folds?k=2",
        f"{BASE}/snapshots/{a}/diff/{b}",
    ]
    for path in paths:
        first = client.get(path)
        assert first.status_code == 200, (path, first.text)
        before = remembered(client)
        again = client.get(path)
        assert remembered(client) == before + 1, path
        assert (again.status_code, again.content) == (200, first.content), path
        assert headers_of(again) == headers_of(first), path
    expected = oracle.expected_stats(manifest, set(), {"patient": [patient]})
    assert stats_of(client, paths[0])["counts"] == expected["counts"]


def test_every_write_ends_what_was_remembered(client: TestClient, database_url: str) -> None:
    """A new snapshot, a presence report, and a write of another process: the same request
    answers what the database holds now, and only then is remembered again."""
    load(client, "ds", manifests.SMALL)
    settled(client)
    assert stats_of(client)["counts"] == oracle.expected_stats(manifests.SMALL, set())["counts"]
    stats_of(client)
    counted = remembered(client)
    assert counted == 1
    other = manifests.generated(6)
    load(client, "ds", other)
    settled(client)
    assert stats_of(client)["counts"] == oracle.expected_stats(other, set())["counts"]
    assert remembered(client) == counted
    assert stats_of(client)["counts"] == oracle.expected_stats(other, set())["counts"]
    assert remembered(client) == counted + 1

    missing = "aaaaaaaa_s002_t000_windows.npz"
    load(client, "ds", manifests.SMALL, expect=(200,))
    marked = client.post(f"{BASE}/presence", json={"missing": [missing]})
    assert marked.status_code == 200, marked.text
    expected = oracle.expected_stats(manifests.SMALL, {missing})
    assert stats_of(client)["missing_windows"] == expected["missing_windows"] == 4

    # Another process changes what no answer holds, but commits: nothing remembered survives.
    settled(client)
    stats_of(client)
    counted = remembered(client)
    states: DatasetStates = client.app.state.dataset_states  # type: ignore[attr-defined]
    before = states.stamp()
    describe_elsewhere(database_url, "changed by another process")
    # SQLite sees the commit at once; Postgres once its notification arrives (milliseconds).
    signals.moved_from(states.stamp, before)
    stats_of(client)
    assert remembered(client) == counted


@pytest.mark.parametrize("reads", ["open", "closed"])
def test_a_burst_after_a_write_parses_each_distinct_request_once(
    settings: Settings, write_token: str, database_url: str, reads: str
) -> None:
    """After a write nothing is remembered, not even the dataset's state: the burst's requests
    wait for it together, then each distinct one is parsed once and the rest are remembered.
    Where reads need a token, it is checked before the wait, and the route takes that check."""
    closed = settings.model_copy(update={"require_read_token": reads == "closed"})
    token = make_token(database_url, "burst-reader", "read") if reads == "closed" else write_token
    with TestClient(create_app(closed), headers={"Authorization": f"Bearer {token}"}) as http:
        load(http, "ds", manifests.SMALL, token=write_token)
        patients = sorted({r["patient"] for r in http.get(f"{BASE}/recordings").json()})
        distinct = [f"{STATS}?exclude_patient={p}" for p in patients]
        distinct += [f"{BASE}/balanced?seed=1", f"{BASE}/breakdown?by=patient"]
        load(http, "ds", manifests.generated(6), token=write_token, expect=(201,))
        settled(http)
        states: DatasetStates = http.app.state.dataset_states  # type: ignore[attr-defined]
        assert states.remembered("ds") is None
        before = remembered(http)

        answers = asked_at_once(http, distinct * 10, headers=dict(http.headers))

        assert [a.status_code for a in answers] == [200] * len(answers)
        assert remembered(http) - before == len(distinct) * 9
        alone = {path: http.get(path).content for path in distinct}
        assert [a.content for a in answers] == [alone[path] for path in distinct * 10]


def test_a_request_waiting_for_its_dataset_is_refused_as_it_would_have_been(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for the dataset's state leaves every refusal to the route: an unknown parameter
    is a 422 even for a dataset that does not exist, or when the database cannot be read."""
    nowhere = "/api/v1/datasets/nothing-here/stats"
    answers = asked_at_once(client, [nowhere] * 3 + [f"{nowhere}?bogus=1"] * 3)
    assert [a.status_code for a in answers] == [404] * 3 + [422] * 3
    assert [a.json()["error"] for a in answers] == ["not_found"] * 3 + ["invalid_request"] * 3

    load(client, "ds", manifests.SMALL)
    states: DatasetStates = client.app.state.dataset_states  # type: ignore[attr-defined]

    def unreadable(name: str) -> None:
        raise OperationalError("SELECT", {}, RuntimeError("the database is down"))

    monkeypatch.setattr(states, "load", unreadable)
    refused = client.get(f"{STATS}?bogus=1")
    assert refused.status_code == 422, refused.text
    assert "bogus" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{STATS}?patient=aaaaaaaa&patinet=bbbbbbbb", 422),  # a typo: unknown parameter
        (f"{BASE}/balanced?seed=minus-one", 422),
        ("/api/v1/datasets/nothing-here/stats", 404),
        (f"{STATS}?snapshot=99999", 404),  # refused after the question was asked
        (f"{BASE}/histogram?bins=5", 422),  # SMALL has no sample counts
    ],
)
def test_a_refused_request_is_checked_every_time(
    client: TestClient, path: str, status: int
) -> None:
    load(client, "ds", manifests.SMALL)
    for _ in range(3):
        response = client.get(path)
        assert response.status_code == status, response.text
    assert remembered(client) == 0
    assert len(client.app.state.request_memo) == 0  # type: ignore[attr-defined]


def test_the_token_is_checked_on_every_request_and_a_revoked_one_is_refused_at_once(
    settings: Settings, write_token: str, database_url: str
) -> None:
    """Where reads need a token, a remembered request is answered only with a valid one, even
    when the token was revoked by a write no process was told of (on Postgres, no NOTIFY)."""
    first, second = (make_token(database_url, f"memo-reader-{n}", "read") for n in (1, 2))
    closed = settings.model_copy(update={"require_read_token": True})
    with TestClient(create_app(closed)) as http:
        load(http, "ds", manifests.SMALL, token=write_token)
        settled(http)
        by_first, by_second = ({"Authorization": f"Bearer {t}"} for t in (first, second))
        answer = http.get(STATS, headers=by_first)
        assert answer.status_code == 200
        assert http.get(STATS, headers=by_first).content == answer.content
        assert http.get(STATS, headers=by_second).content == answer.content
        assert remembered(http) == 2
        last = "y" if first.endswith("x") else "x"
        wrong = {"Authorization": f"Bearer {first[:-1]}{last}"}
        assert http.get(STATS).status_code == 401
        assert http.get(STATS, headers=wrong).status_code == 401
        assert remembered(http) == 2  # refused ones are not counted as answered
        engine = make_engine(database_url)
        try:
            with engine.begin() as connection:
                revoked = connection.execute(
                    update(ApiToken)
                    .where(ApiToken.name == "memo-reader-1")
                    .values(revoked_at=datetime.now(UTC))
                )
                assert revoked.rowcount == 1
        finally:
            engine.dispose()
        assert http.get(STATS, headers=by_first).status_code == 401
        assert http.get(STATS, headers=by_second).content == answer.content


def test_accepted_encodings_are_part_of_the_request(client: TestClient) -> None:
    load(client, "ds", manifests.SMALL)
    settled(client)
    path = f"{BASE}/balanced/index"
    # httpx decodes gzip itself: the header says what was sent.
    for encoding, sent in [("gzip", "gzip"), ("identity", None)] * 2:
        response = client.get(path, headers={"Accept-Encoding": encoding})
        assert response.status_code == 200
        assert response.headers.get("content-encoding") == sent, encoding
    assert remembered(client) == 2
    plain = client.get(path, headers={"Accept-Encoding": "identity"}).content
    assert client.get(path, headers={"Accept-Encoding": "gzip"}).content == plain


def test_an_etag_the_client_holds_is_answered_304_from_memory(client: TestClient) -> None:
    load(client, "ds", manifests.SMALL)
    settled(client)
    first = client.get(STATS)
    etag = first.headers["etag"]
    again = client.get(STATS, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert remembered(client) == 1
    other = client.get(STATS, headers={"If-None-Match": '"not-this-one"'})
    assert (other.status_code, other.content) == (200, first.content)
    assert remembered(client) == 2
    head = client.head(STATS)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", etag)
    assert head.headers["content-length"] == first.headers["content-length"]
    assert remembered(client) == 3


def query_of_length(length: int) -> str:
    """A recording filter whose query string is exactly `length` bytes long."""
    names: list[str] = []
    while len(query := "recording=" + ",".join(names)) < length - 20:
        names.append(f"r{len(names):06d}")
    query += "," + "r" * (length - len(query) - 1)
    assert len(query) == length
    return query


def test_long_query_strings_are_not_remembered(client: TestClient) -> None:
    load(client, "ds", manifests.SMALL)
    settled(client)
    for length, counted in ((MEMO_QUERY_BYTES, 1), (MEMO_QUERY_BYTES + 1, 0)):
        path = f"{STATS}?{query_of_length(length)}"
        before = remembered(client)
        answers = [client.get(path) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200], answers[0].text
        assert answers[0].content == answers[1].content
        assert remembered(client) == before + counted, length


def test_the_memo_can_be_turned_off(settings: Settings, write_token: str) -> None:
    off = settings.model_copy(update={"request_memo_entries": 0})
    headers = {"Authorization": f"Bearer {write_token}"}
    with TestClient(create_app(off), headers=headers) as http:
        load(http, "ds", manifests.SMALL)
        settled(http)
        answers = [http.get(STATS) for _ in range(3)]
        assert {a.content for a in answers} == {answers[0].content}
        assert remembered(http) == 0


def test_an_entry_is_trusted_only_under_its_stamp() -> None:
    memo = RequestMemo(4)
    key = ("/api/v1/datasets/ds/stats", b"", True)
    asked: Any = object()  # what was asked is held, never looked into, by the memo
    memo.note(key, (7, 0), asked)
    assert memo.asked(key, (7, 0)) is asked
    assert memo.asked(key, (8, 0)) is None
    assert memo.asked(key, (7, 1)) is None
    assert memo.asked((key[0], b"patient=a", True), (7, 0)) is None
    assert memo.asked((key[0], b"", False), (7, 0)) is None


def test_the_stamp_moves_with_every_commit_of_any_connection(database_url: str) -> None:
    engine = make_engine(database_url)
    other = make_engine(database_url)
    signal = change_signal(engine)
    try:
        factory = make_session_factory(engine)
        with write_session(factory) as session:
            catalog.create_dataset(session, "ds")
        states = DatasetStates(factory, signal)
        signals.settled(states.stamp)  # Postgres: until the listener is connected
        first = states.stamp()
        with write_session(factory) as session:
            catalog.get_dataset(session, "ds").description = "changed here"
        assert states.stamp() != first  # at once, before any notification
        signals.settled(states.stamp)  # and this process's own notification heard
        own = states.stamp()
        with write_session(make_session_factory(other)) as session:
            catalog.get_dataset(session, "ds").description = "changed elsewhere"
        signals.moved_from(states.stamp, own)
    finally:
        signal.close()
        engine.dispose()
        other.dispose()
