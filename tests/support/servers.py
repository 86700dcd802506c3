"""Real server processes on free loopback ports, for end-to-end tests and the benchmarks.

A server's output always goes to a log file of its own: a pipe nobody reads fills up and stalls
the process writing to it. The one test about exactly that asks for a pipe and reads it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int, *options: str) -> list[str]:
    """`python -m app serve` on `port`, with more `serve` options."""
    return [sys.executable, "-m", "app", "serve", "--port", str(port), *options]


class ServerProcess:
    """A process serving HTTP on a port of its own, which can be killed and started again."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready_path: str = "/readyz",
        output_to_pipe: bool = False,
    ) -> None:
        self.command = list(command)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = os.environ | (env or {})
        self.cwd = cwd
        self.log_path = log_path
        self.ready_path = ready_path
        self.output_to_pipe = output_to_pipe
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, ready: bool = True, timeout: float = 60) -> None:
        """Start the process; return once `ready_path` answers 200 (or anything, if not `ready`)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=subprocess.PIPE if self.output_to_pipe else log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.command[:3]} exited with {self.process.returncode}: "
                    f"{self.log_path.read_text()[-2000:]}"
                )
            try:
                response = httpx.get(f"{self.url}{self.ready_path}", timeout=2)
                if response.status_code == 200 or not ready:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.command[:3]} did not become ready in {timeout} s: "
                    f"{self.log_path.read_text()[-2000:]}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no rollback, exactly like a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
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


class LiveServer(ServerProcess):
    """`python -m app serve` on the given database, run in `workdir`, logging to a file there."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        *,
        serve_options: Sequence[str] = (),
        output_to_pipe: bool = False,
    ) -> None:
        port = free_port()
        super().__init__(
            serve_command(port, *serve_options),
            port,
            workdir / f"server-{port}.log",
            env={"DATABASE_URL": database_url} | (extra_env or {}),
            cwd=workdir,
            output_to_pipe=output_to_pipe,
        )


Server = TypeVar("Server", bound=ServerProcess)


@contextmanager
def serving(server: Server, *, timeout: float = 60) -> Iterator[Server]:
    """The server started and ready, stopped afterwards whatever happened."""
    try:
        server.start(timeout=timeout)
        yield server
    finally:
        server.stop()


@contextmanager
def live_server(
    database_url: str,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    serve_options: Sequence[str] = (),
) -> Iterator[LiveServer]:
    """A started LiveServer, stopped afterwards whatever happened."""
    server = LiveServer(database_url, workdir, extra_env, serve_options=serve_options)
    with serving(server):
        yield server


@contextmanager
def running_server(
    database_url: str, workdir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start `python -m app serve` on a free port; yield its base URL once /readyz says ok."""
    with live_server(database_url, workdir, extra_env) as server:
        yield server.url
