"""The same question asked many times at once is computed once, and every asker gets its answer;
when that answer could not be kept, the others compute it themselves instead of waiting on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api import answer_path
from app.api.answer_cache import AnswerCache
from app.api.single_flight import InFlight
from app.errors import BusyError
from app.storage.commit_signal import ChangeSignal
from tests.support import manifests, oracle, signals
from tests.support.at_once import asked_at_once
from tests.support.uploads import load

BASE = "/api/v1/datasets/ds"
ASKERS = 12
MANIFEST = manifests.generated(11, recordings=40)
PATIENT = oracle.names_of(MANIFEST["no_seizure"][0]["cache_file"])[1]


def held_until_all_wait(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, first: Callable[[], None] | None = None
) -> list[str]:
    """Count the computations; the first one is held until every other asker waits on it (so
    that all are in flight together, however fast the machine), then runs `first`, if given."""
    in_flight: InFlight = client.app.state.in_flight  # type: ignore[attr-defined]
    calls: list[str] = []
    lock = threading.Lock()
    real = answer_path.compute_answer

    def counting(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.append(kwargs["question"].key[0])
            leading = len(calls) == 1
        if leading:
            deadline = time.monotonic() + 30
            while in_flight.waiting < ASKERS - 1:
                assert time.monotonic() < deadline, f"{in_flight.waiting} waiting"
                time.sleep(0.005)
            if first is not None:
                first()
        return real(*args, **kwargs)

    monkeypatch.setattr(answer_path, "compute_answer", counting)
    return calls


def ask_at_once(client: TestClient, path: str) -> list[httpx.Response]:
    """ASKERS identical requests at the same time, on the app's own event loop."""
    return asked_at_once(client, [path] * ASKERS)


def answers_counted(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    counted = {}
    for line in text.splitlines():
        if line.startswith("seizure_stats_answers_waiting "):
            counted["waiting"] = float(line.rsplit(" ", 1)[1])
        if line.startswith("seizure_stats_answers_total{"):
            source = line.split('source="')[1].split('"')[0]
            counted[source] = float(line.rsplit(" ", 1)[1])
    return counted


def asked_at_once_and_computed_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, kind: str
) -> list[httpx.Response]:
    """ASKERS answers to `path` asked at once, after checking that one computation (of the
    question kind `kind`) served them all, under one ETag."""
    load(client, "ds", MANIFEST)
    calls = held_until_all_wait(monkeypatch, client)
    answers = ask_at_once(client, path)
    assert calls == [kind]
    assert [response.status_code for response in answers] == [200] * ASKERS
    assert len({response.headers["etag"] for response in answers}) == 1
    assert answers_counted(client) == {"computed": 1, "shared": ASKERS - 1, "waiting": 0}
    return answers


def test_a_question_asked_at_once_is_computed_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{BASE}/stats?exclude_patient={PATIENT}"
    answers = asked_at_once_and_computed_once(client, monkeypatch, path, "stats")
    expected = oracle.expected_stats(MANIFEST, set(), {"exclude_patient": [PATIENT]})
    assert expected["recordings"] < len(manifests.recordings_of(MANIFEST))
    for response in answers:
        assert response.json()["counts"] == expected["counts"]
        assert response.json()["recordings"] == expected["recordings"]


def test_a_streamed_index_asked_at_once_is_computed_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{BASE}/balanced/index?seed=5"
    # httpx accepts gzip, as our client does
    answers = asked_at_once_and_computed_once(client, monkeypatch, path, "index-jsonl-gzip")
    _, expected = oracle.expected_balanced(MANIFEST, set(), seed=5)
    for response in answers:
        lines = [httpx.Response(200, content=line).json() for line in response.iter_lines()]
        assert [(line["cache_file"], line["window_idx"]) for line in lines] == expected


def test_an_answer_the_cache_does_not_keep_is_still_shared(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.app.state.answer_cache = AnswerCache(100, max_bytes=0)  # type: ignore[attr-defined]
    path = f"{BASE}/stats?category=seizure"
    answers = asked_at_once_and_computed_once(client, monkeypatch, path, "stats")
    expected = oracle.expected_stats(MANIFEST, set(), {"category": ["seizure"]})["counts"]
    assert [response.json()["counts"] for response in answers] == [expected] * ASKERS
    assert client.app.state.answer_cache.size_bytes == 0  # type: ignore[attr-defined]


def test_when_the_first_computation_is_refused_the_others_compute_it(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(client, "ds", MANIFEST)

    def refuse() -> None:
        raise BusyError("the first computation was refused", retry_after_seconds=1)

    calls = held_until_all_wait(monkeypatch, client, first=refuse)
    answers = ask_at_once(client, f"{BASE}/stats?category=seizure")
    assert calls == ["stats"] * ASKERS
    expected = oracle.expected_stats(MANIFEST, set(), {"category": ["seizure"]})["counts"]
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [200] * (ASKERS - 1) + [429]
    for response in answers:
        if response.status_code == 200:
            assert response.json()["counts"] == expected
    assert answers_counted(client) == {"computed": ASKERS - 1, "waiting": 0}


def test_an_index_streamed_past_the_cache_budget_is_computed_by_each(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held whole it would be more than the cache may hold: streamed, so none is handed over."""
    load(client, "ds", MANIFEST)
    client.app.state.answer_cache = AnswerCache(100, max_bytes=0)  # type: ignore[attr-defined]
    calls = held_until_all_wait(monkeypatch, client)
    answers = ask_at_once(client, f"{BASE}/balanced/index?seed=5")
    assert calls == ["index-jsonl-gzip"] * ASKERS
    _, expected = oracle.expected_balanced(MANIFEST, set(), seed=5)
    for response in answers:
        assert response.status_code == 200, response.text
        assert "content-length" not in response.headers  # streamed as it was computed
        lines = [httpx.Response(200, content=line).json() for line in response.iter_lines()]
        assert [(line["cache_file"], line["window_idx"]) for line in lines] == expected
    assert answers_counted(client) == {"computed": ASKERS, "waiting": 0}


def test_after_a_write_the_dataset_state_is_read_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes: ChangeSignal = client.app.state.changes  # type: ignore[attr-defined]
    before = changes.token()
    load(client, "ds", MANIFEST)  # a commit: no process remembers the dataset's state now
    signals.moved_from(changes.token, before)
    signals.settled(changes.token)
    states = client.app.state.dataset_states  # type: ignore[attr-defined]
    in_flight: InFlight = client.app.state.in_flight  # type: ignore[attr-defined]
    loads: list[str] = []
    real = states.load

    def counting(name: str) -> Any:
        loads.append(name)
        if len(loads) == 1:  # held until every other asker waits on it
            deadline = time.monotonic() + 30
            while in_flight.waiting < ASKERS - 1:
                assert time.monotonic() < deadline, f"{in_flight.waiting} waiting"
                time.sleep(0.005)
        return real(name)

    monkeypatch.setattr(states, "load", counting)
    answers = ask_at_once(client, f"{BASE}/stats")
    assert loads == ["ds"]
    expected = oracle.expected_stats(MANIFEST, set(), {})["counts"]
    assert [response.json()["counts"] for response in answers] == [expected] * ASKERS
