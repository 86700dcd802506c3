"""Load: many clients at once get answers, never errors (the full run is `python -m bench.load`)."""

from __future__ import annotations

import anyio

from app.db import POOL_OVERFLOW, POOL_SIZE, make_engine


def test_every_endpoint_thread_can_have_a_database_connection(tmp_path: object) -> None:
    """Fewer connections than threads let a burst queue threads on the (unfair) connection
    pool, and under 200 clients some waited past its timeout: 500s in the load test."""

    async def thread_limit() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    threads = anyio.run(thread_limit)
    assert threads <= POOL_SIZE + POOL_OVERFLOW
    for url in (f"sqlite:///{tmp_path}/pool.db", "postgresql+psycopg://nobody@127.0.0.1:1/none"):
        engine = make_engine(url)
        assert engine.pool.size() == POOL_SIZE, url  # type: ignore[attr-defined]
        engine.dispose()
