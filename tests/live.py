"""A real uvicorn process of the service, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """`python -m app serve` on a port of its own, which can be killed and started again."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        *,
        output_to_pipe: bool = False,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = os.environ | {"DATABASE_URL": database_url} | (extra_env or {})
        self.workdir = workdir
        self.log_path = workdir / f"server-{self.port}.log"
        # A pipe the test reads only when it wants to: an unread pipe is a stalled log reader.
        self.output_to_pipe = output_to_pipe
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, ready: bool = True, timeout: float = 30) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=subprocess.PIPE if self.output_to_pipe else log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=1)
                if response.status_code == 200 or not ready:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not become ready in {timeout} s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no rollback, exactly like a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def peak_rss_bytes(self) -> int:
        """The process's peak resident set size so far (Linux: VmHWM)."""
        return self._status_bytes("VmHWM")

    def rss_bytes(self) -> int:
        """The process's resident set size now (Linux: VmRSS)."""
        return self._status_bytes("VmRSS")

    def _status_bytes(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{field} not reported")  # pragma: no cover


@contextmanager
def live_server(
    database_url: str, workdir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A started LiveServer, stopped afterwards whatever happened."""
    server = LiveServer(database_url, workdir, extra_env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def running_server(
    database_url: str, workdir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start `python -m app serve` on a free port; yield its base URL once /readyz says ok."""
    with live_server(database_url, workdir, extra_env) as server:
        yield server.url
