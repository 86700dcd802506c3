"""Load: many clients at once get answers, never errors (the full run is `python -m bench.load`)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from app.db import POOL_OVERFLOW, POOL_SIZE, make_engine
from bench import load


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


@pytest.mark.e2e
@pytest.mark.slow
def test_a_burst_and_a_few_seconds_of_many_clients_without_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert load.main(["--clients", "100", "--duration", "3", "--burst", "100"]) == 0
    table = capsys.readouterr().out
    assert "| burst | 300 | 0 |" in table
    assert "| steady |" in table


def test_idle_connections_are_closed_by_the_client_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """With uvicorn's 5 s keep-alive, the server closed connections a client was about to reuse:
    a ReadError in the load test's burst. The client must be the one to time out first."""
    import uvicorn
    from click.testing import CliRunner

    from app.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setattr("app.observability.logs.configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    result = CliRunner().invoke(main, ["serve", "--port", "9"])
    assert result.exit_code == 0, result.output
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    assert isinstance(seen["timeout_keep_alive"], int)
    assert seen["timeout_keep_alive"] > 10 * client_expiry
