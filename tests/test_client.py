"""The training-job client: against a real uvicorn process, and through MockTransport for faults."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from seizure_stats.client import (
    APIError,
    SeizureStatsClient,
    ServiceUnavailableError,
    UnmatchedFilterError,
)
from seizure_stats.schemas.folds import FoldsResponse
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.answers import stats_body
from tests.support.uploads import load


@pytest.fixture
def live_token(database_url: str) -> str:
    return make_token(database_url, "e2e-writer", "write")


@pytest.mark.e2e
def test_training_job_start_up_against_a_real_server(
    live_server: str, live_token: str, tmp_path: Path
) -> None:
    manifest = manifests.generated(17, recordings=60)
    names = manifests.recordings_of(manifest)
    path = tmp_path / "manifest.json.gz"
    path.write_bytes(gzip.compress(json.dumps(manifest).encode()))
    with SeizureStatsClient(live_server, token=live_token, retries=0) as client:
        imported = client.import_manifest("tusz-train", path)
        assert imported.created
        assert client.import_manifest("tusz-train", path).created is False
        client.report_presence("tusz-train", missing=names[:3])
        missing = set(names[:3])

        stats = client.stats("tusz-train", exclude_patient=oracle.names_of(names[5])[1])
        expected = oracle.expected_stats(
            manifest, missing, {"exclude_patient": [oracle.names_of(names[5])[1]]}
        )
        assert stats.counts.model_dump() == expected["counts"]
        assert stats.pos_weight == expected["pos_weight"]
        assert stats.content_hash == imported.content_hash

        long_filter = names[10:40] + [f"nope_{i}" for i in range(500)]
        # Names the snapshot lacks are refused unless the question says it expects them.
        with pytest.raises(UnmatchedFilterError) as refused:
            client.stats("tusz-train", recording=long_filter, weighting="linear")
        assert refused.value.unmatched_counts == {"recording": 500}
        posted = client.stats("tusz-train", recording=long_filter, weighting="linear", strict=False)
        expected = oracle.expected_stats(
            manifest, missing, {"recording": long_filter}, weighting="linear"
        )
        assert posted.counts.model_dump() == expected["counts"]
        assert posted.pos_weight == expected["pos_weight"]

        balanced = client.balanced("tusz-train", seed=3)
        counts, order = oracle.expected_balanced(manifest, missing, seed=3)
        assert balanced.counts.total == sum(counts.values())
        index = [(e.cache_file, e.window_idx) for e in client.balanced_index("tusz-train", seed=3)]
        assert index == order
        filtered = client.balanced_index("tusz-train", recording=long_filter, strict=False)
        assert [(e.cache_file, e.window_idx) for e in filtered] == oracle.expected_balanced(
            manifest, missing, {"recording": long_filter}
        )[1]

        assert [d.name for d in client.datasets()] == ["tusz-train"]
        assert len(client.snapshots("tusz-train")) == 1
        with pytest.raises(APIError) as caught:
            client.stats("tusz-train", weighting="cubic")
        assert caught.value.status_code == 422
        assert "weighting" in caught.value.detail


def mock_client(handler: httpx.MockTransport, retries: int = 3) -> SeizureStatsClient:
    return SeizureStatsClient(
        "http://stats.test", transport=handler, retries=retries, backoff=0.001
    )


STATS_BODY = stats_body()


def test_retries_5xx_and_429_then_succeeds() -> None:
    statuses = iter([503, 429, 502, 200])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        status = next(statuses)
        if status == 200:
            return httpx.Response(200, json=STATS_BODY)
        return httpx.Response(
            status, headers={"Retry-After": "0"}, json={"error": "x", "detail": "y"}
        )

    with mock_client(httpx.MockTransport(handler)) as client:
        assert client.stats("d", patient=["a", "b"]).pos_weight == 3**0.5
    assert len(seen) == 4
    assert seen[0].endswith(
        "/api/v1/datasets/d/stats?patient=a&patient=b&weighting=sqrt&beta=0.9999&basis=window"
        "&strict=true"  # strict unless asked otherwise: a typo in a filter is refused
    )


def counting(
    respond: Callable[[httpx.Request], httpx.Response],
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that answers with `respond`, and the list of every request sent to it."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return respond(request)

    return httpx.MockTransport(handler), sent


def refused(status: int, error: str, detail: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json={"error": error, "detail": detail})


def test_gives_up_after_the_retry_budget() -> None:
    transport, sent = counting(refused(503, "unavailable", "database down"))
    with mock_client(transport, retries=2) as client, pytest.raises(APIError) as caught:
        client.stats("d")
    assert len(sent) == 3
    assert caught.value.status_code == 503
    assert "database down" in str(caught.value)


def test_connection_errors_become_service_unavailable() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    transport, sent = counting(unreachable)
    with (
        mock_client(transport, retries=2) as client,
        pytest.raises(ServiceUnavailableError) as caught,
    ):
        client.stats("d")
    assert len(sent) == 3
    assert "3 attempt" in str(caught.value)


def test_client_errors_are_not_retried() -> None:
    transport, sent = counting(refused(404, "not_found", "dataset 'd' does not exist"))
    with mock_client(transport) as client, pytest.raises(APIError) as caught:
        client.stats("d")
    assert len(sent) == 1
    assert (caught.value.status_code, caught.value.error) == (404, "not_found")


def test_long_filters_travel_in_a_post_body() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=STATS_BODY)

    names = [f"r{i}" for i in range(1000)]
    with mock_client(httpx.MockTransport(handler)) as client:
        client.stats("d", recording=names, snapshot=4)
    assert requests[0].method == "POST"
    body = json.loads(requests[0].content)
    assert body["recording"] == names
    assert body["snapshot"] == 4


def test_a_success_that_is_not_json_is_the_service_unavailable() -> None:
    """A 200 page from something in front of the service (a proxy's maintenance page) is not an
    answer: ServiceUnavailableError, as when nothing answers, not a JSON decoding error."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>down for maintenance</html>")

    with (
        SeizureStatsClient(
            "http://stats.test", transport=httpx.MockTransport(handler), retries=0, cache=False
        ) as client,
        pytest.raises(ServiceUnavailableError, match=r"not JSON.*down for maintenance"),
    ):
        client.stats("d")


def test_client_imports_nothing_from_the_server_side() -> None:
    import subprocess
    import sys

    code = (
        "import sys, seizure_stats, seizure_stats.labels; "
        "server = ('app', 'sqlalchemy', 'fastapi', 'starlette', 'uvicorn', 'alembic', 'numpy'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in server]; "
        "print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_an_empty_filter_value_is_refused_by_the_service(live_server: str, live_token: str) -> None:
    """An empty string among a caller's values, in the URL or in a long POST body: a 422."""
    hint = "leave the parameter out (or send []) for no filter"
    with SeizureStatsClient(live_server, token=live_token, retries=0) as client:
        client.import_manifest("small", io.BytesIO(json.dumps(manifests.SMALL).encode()))
        assert client.stats("small", patient=[]).counts.total == 12
        for call, detail in [
            (lambda: client.stats("small", patient=""), "patient: empty value in ''"),
            (lambda: client.stats("small", session=["s001", ""]), "session: empty value in ''"),
            (
                lambda: client.balanced("small", recording=[f"r{i}" for i in range(200)] + [" "]),
                "recording: empty value in ' '",
            ),
            (
                lambda: list(client.balanced_index("small", exclude_patient="a,,b")),
                "exclude_patient: empty value in 'a,,b'",
            ),
        ]:
            with pytest.raises(APIError) as refused:
                call()
            assert refused.value.status_code == 422
            assert refused.value.detail.startswith(f"{detail}: {hint} (got ")


def test_folds_are_the_parsed_answer_of_the_route(client: TestClient) -> None:
    load(client, "cv", manifests.generated(43, recordings=70))
    sent: list[str] = []

    def through_the_app(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.raw_path.decode())
        answer = client.request(request.method, request.url.raw_path.decode())
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with mock_client(httpx.MockTransport(through_the_app), retries=0) as stats_client:
        folds = stats_client.folds("cv", k=3, seed=2, stratify="seizure")
        assert isinstance(folds, FoldsResponse)
        expected = client.get(
            "/api/v1/datasets/cv/folds", params={"k": 3, "seed": 2, "stratify": "seizure"}
        ).json()
        assert folds.model_dump() == expected
        assert (folds.k, folds.seed, folds.stratify) == (3, 2, "seizure")
        pinned = stats_client.folds("cv", snapshot=folds.snapshot, balanced_seed=7)
        assert pinned.balanced_seed == 7
        assert pinned.k == 5
        with pytest.raises(APIError) as caught:
            stats_client.folds("cv", k=1)
    assert caught.value.status_code == 422
    assert caught.value.detail == "k: Input should be greater than or equal to 2 (got '1')"
    assert sent[0] == (
        "/api/v1/datasets/cv/folds?k=3&seed=2&stratify=seizure&weighting=sqrt&beta=0.9999"
        "&full_ratio=0.3&background_ratio=2.5&balanced_seed=42"
    )
