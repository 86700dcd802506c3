"""The load benchmarks' client side: timed requests over keep-alive connections, by phase."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import h11


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    refused: int = 0  # 429 busy: expected of hostile requests only
    health: list[float] = field(default_factory=list)  # /healthz latencies meanwhile

    def percentile(self, q: float, of: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if of is None else of)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)


class Connection:
    """One keep-alive HTTP/1.1 connection, as one training job or dashboard holds.

    A few lines over asyncio streams and h11, because httpx's async pool spends more time on
    200 connections than the service takes to answer them: it, not the service, set the pace.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.protocol = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Send one request, read the whole answer, return its status."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.protocol = h11.Connection(h11.CLIENT)
        sent = [("Host", f"{self.host}:{self.port}"), ("Content-Length", str(len(body)))]
        if body:
            sent.append(("Content-Type", "application/json"))
        sent += headers
        out = self.protocol.send(h11.Request(method=method, target=target, headers=sent)) or b""
        if body:
            out += self.protocol.send(h11.Data(data=body)) or b""
        out += self.protocol.send(h11.EndOfMessage()) or b""
        self.writer.write(out)
        await self.writer.drain()
        status = 0
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                chunk = await self.reader.read(65536)
                self.protocol.receive_data(chunk)  # b"" tells h11 the peer closed
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            self.protocol.start_next_cycle()
        else:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def timed(
    connection: Connection,
    phase: Phase,
    method: str,
    path: str,
    params: Mapping[str, object] | None = None,
    json_body: object = None,
    *,
    may_refuse: bool = False,
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    target = f"{path}?{urlencode(params, doseq=True)}" if params else path
    body = json.dumps(json_body).encode() if json_body is not None else b""
    started = time.perf_counter()
    try:
        status = await connection.request(method, target, body, headers)
    except (OSError, h11.ProtocolError) as exc:
        phase.errors.append(f"{method} {path}: {exc!r}")
        await connection.close()
        return
    if status == 429 and may_refuse:
        phase.refused += 1
        return
    if status != 200:
        phase.errors.append(f"{method} {path}: {status}")
        return
    phase.latencies.append(time.perf_counter() - started)
