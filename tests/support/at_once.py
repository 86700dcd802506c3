"""Requests made at the same time, on the event loop of an app a TestClient runs."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient


def asked_at_once(
    client: TestClient, paths: list[str], headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """GET every path at the same time; the answers in the order of `paths`."""

    async def all_of_them() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as http:
            return list(await asyncio.gather(*(http.get(path) for path in paths)))

    assert client.portal is not None
    return client.portal.call(all_of_them)
