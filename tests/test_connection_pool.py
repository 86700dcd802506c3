"""No request holds a pooled connection while it waits for a thread.

There are as many connections as worker threads. A request that kept its connection while it
waited for a thread, with every thread waiting for a connection, stalled the whole service until
the pool's 30 s timeout, then got 503s: 200 clients listing datasets did it under load.
"""

from __future__ import annotations

import asyncio
from typing import get_type_hints

import anyio.to_thread
import httpx
from fastapi import Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.api import datasets, folds, reports, scans, stats
from app.api.deps import get_read_session, read_endpoint
from app.dashboard import routes as dashboard_routes
from app.db import POOL_SIZE
from tests.support import manifests
from tests.support.uploads import load

# Few threads, and more requests at once than there are connections: without the rule, the
# stall is certain rather than a matter of timing.
THREADS = 2
AT_ONCE = POOL_SIZE * 2
STALLED_AFTER_SECONDS = 60


def depends_on_read_session(route: APIRoute) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is get_read_session:
            return True
        pending += dependency.dependencies
    return False


def answered_as_it_is() -> int:
    return 0


# Every endpoint made a read_endpoint runs the same code: the wrapper's.
READ_ENDPOINT_CODE = read_endpoint(answered_as_it_is).__code__


def test_every_endpoint_on_a_read_session_is_a_read_endpoint() -> None:
    routers = [datasets.router, stats.router, reports.router, scans.router, folds.router]
    routers.append(dashboard_routes.router)
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    on_sessions = [r for r in routes if depends_on_read_session(r)]
    assert len(on_sessions) == 12  # 5 listings of datasets, 4 of scans, 3 dashboard pages
    for route in on_sessions:
        answer = get_type_hints(route.endpoint)["return"]
        if isinstance(answer, type) and issubclass(answer, Response):
            continue  # a page: already bytes when the endpoint returns
        assert route.endpoint.__code__ is READ_ENDPOINT_CODE, route.path


def test_many_listings_at_once_on_few_threads_are_all_answered(client: TestClient) -> None:
    load(client, "ds", manifests.SMALL)
    expected = client.get("/api/v1/datasets").json()

    async def all_at_once() -> list[httpx.Response]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            paths = ["/api/v1/datasets", "/api/v1/datasets/ds/snapshots"] * (AT_ONCE // 2)
            # Stalled, they would wait on the pool's 30 s timeouts a thread at a time.
            async with asyncio.timeout(STALLED_AFTER_SECONDS):
                return list(await asyncio.gather(*(http.get(path) for path in paths)))

    assert client.portal is not None
    answers = client.portal.call(all_at_once)
    assert [a.status_code for a in answers] == [200] * AT_ONCE, answers[0].text
    assert answers[0].json() == expected
