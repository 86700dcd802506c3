"""Database faults: Postgres stops and comes back while requests flow.

The service keeps running and recovers by itself, answers 503 (never a 500) while the database
is away, /readyz says so, the client's retries ride over a short outage and give up with a clear
error after their budget. The cluster is a throwaway one of this test's own.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.storage.migrations import upgrade
from seizure_stats.client import APIError, SeizureStatsClient, ServiceUnavailableError
from tests.conftest import make_token
from tests.support import manifests
from tests.support.ci import cannot_run
from tests.support.integrity import integrity_problems
from tests.support.pgcluster import ThrowawayPostgres, unavailable_reason
from tests.support.postgres import create_database
from tests.support.servers import LiveServer
from tests.support.uploads import load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[ThrowawayPostgres]:
    reason = unavailable_reason()
    if reason:
        cannot_run(f"no throwaway Postgres cluster: {reason}")
    cluster = ThrowawayPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


class Traffic:
    """Readers asking for stats and readiness in a loop, every answer's status recorded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(p,)) for p in self.PATHS]

    PATHS = ("/api/v1/datasets/ds/stats", "/api/v1/datasets/ds/balanced", "/readyz")

    def _loop(self, path: str) -> None:
        deadline = time.monotonic() + 120  # bounded whatever happens
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                try:
                    self.statuses[(path, http.get(path).status_code)] += 1
                except httpx.HTTPError as exc:
                    self.errors.append(f"{path}: {exc!r}")
                time.sleep(0.01)

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)


def wait_for_status(url: str, path: str, status: int, timeout: float = 30) -> float:
    """Seconds until `path` answers `status`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url + path, timeout=5).status_code == status:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not answer {status} within {timeout} s")


def test_postgres_restarts_while_requests_flow(cluster: ThrowawayPostgres, tmp_path: Path) -> None:
    database_url = create_database(cluster.admin_url, "faults")
    upgrade(database_url)
    token = make_token(database_url, "faults-writer", "write")
    auth = {"Authorization": f"Bearer {token}"}
    server = LiveServer(database_url, tmp_path)
    server.start()
    try:
        url = server.url
        load(url, "ds", manifests.SMALL, token=token)
        baseline = httpx.get(f"{url}/api/v1/datasets/ds/stats").json()
        pid = server.pid
        faults = 0

        with Traffic(url) as traffic:
            time.sleep(0.5)
            for mode in ("fast", "immediate"):  # a clean shutdown, then a crash
                cluster.stop(mode)
                faults += 1
                wait_for_status(url, "/readyz", 503, timeout=10)
                ready = httpx.get(f"{url}/readyz").json()
                assert "database unreachable" in ready["detail"]
                during = httpx.get(f"{url}/api/v1/datasets/ds/stats")
                assert during.status_code == 503, during.text
                assert during.json()["error"] == "database_unavailable"
                assert during.headers["Retry-After"] == "1"
                refused = httpx.post(
                    f"{url}/api/v1/datasets/ds/snapshots",
                    content=json.dumps(manifests.generated(3)),
                    headers=auth,
                )
                assert refused.status_code == 503, refused.text

                # A client with a small budget and no answer of its own to fall back on
                # gives up with the service's reason ...
                with (
                    SeizureStatsClient(url, retries=1, backoff=0.05, cache=False) as impatient,
                    pytest.raises(APIError) as caught,
                ):
                    impatient.stats("ds")
                assert caught.value.status_code == 503
                assert caught.value.error == "database_unavailable"
                assert "database is unavailable" in str(caught.value)
                if mode == "immediate":  # ... one that got the answer before gives it again
                    with SeizureStatsClient(url, retries=1, backoff=0.05) as remembering:
                        cached = remembering.stats("ds")
                    assert cached.from_cache
                    assert cached.model_dump() == baseline

                # ... while the default budget rides over an outage of a couple of seconds.
                answers: list[object] = []

                def patient_job(into: list[object] = answers) -> None:
                    with SeizureStatsClient(url) as client:
                        try:
                            into.append(client.stats("ds"))
                        except Exception as exc:
                            into.append(exc)

                job = threading.Thread(target=patient_job)
                job.start()
                time.sleep(2)
                cluster.start()
                job.join(60)
                assert len(answers) == 1
                answer = answers[0]
                assert not isinstance(answer, Exception), answer
                assert answer.model_dump() == baseline  # type: ignore[attr-defined]

                recovered_in = wait_for_status(url, "/readyz", 200, timeout=30)
                assert recovered_in < 10
                assert httpx.get(f"{url}/api/v1/datasets/ds/stats").json() == baseline
            time.sleep(0.5)

        assert server.process is not None
        assert server.process.poll() is None, "the service must not have exited"
        assert server.pid == pid
        assert traffic.errors == []
        statuses = {status for (_, status) in traffic.statuses}
        assert statuses <= {200, 503}, traffic.statuses
        assert traffic.statuses[("/readyz", 503)] > 0
        assert traffic.statuses[("/api/v1/datasets/ds/stats", 200)] > 0
        assert faults == 2

        # Writes work again and nothing of the refused imports is left.
        again = httpx.post(
            f"{url}/api/v1/datasets/ds/snapshots",
            content=json.dumps(manifests.generated(3)),
            headers=auth,
        )
        assert again.status_code == 201, again.text
        assert len(httpx.get(f"{url}/api/v1/datasets/ds/snapshots").json()) == 2
        assert integrity_problems(database_url) == []
    finally:
        server.stop()

    # With the service itself gone, a client without a cached answer reports that, after its
    # retries.
    with (
        SeizureStatsClient(server.url, retries=2, backoff=0.05, cache=False) as client,
        pytest.raises(ServiceUnavailableError) as unreachable,
    ):
        client.stats("ds")
    assert "3 attempt" in str(unreachable.value)
