"""The client as a training job installs it: its wheel alone in a fresh virtualenv, small, importing
nothing of the server, running the README's training snippet against a real server; and the
service's own install still pulls the client in.

Measured when this test was written: the client's install adds about 14.1 MB to the new venv's
site-packages (httpx, pydantic and their dependencies; the venv's own pip and setuptools, some
23 MB, come with every venv), against about 178 MB for the service's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from app.cli import main
from app.cli.data import demo as demo_command
from app.demo import demo_manifest_bytes
from tests.conftest import make_token
from tests.support import oracle

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python"
README = ROOT / "README.md"

# Top-level modules of the server and of what only the server needs (numpy is the client's extra).
# Not click: httpx loads it for its command line wherever it is installed.
SERVER_MODULES = {
    "app",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",
    "numpy",
    "pydantic_settings",
    "psycopg",
    "jinja2",
}
# The same as distributions, as importlib.metadata names them once normalized.
SERVER_DISTRIBUTIONS = {"seizure-stats", *(m.replace("_", "-") for m in SERVER_MODULES - {"app"})}
INSTALL_BYTES_BOUND = 25_000_000
NUMPY_HINT = "seizure-stats-client[numpy]"


def run(
    command: Sequence[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; on failure the assertion shows its output."""
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, (command, result.stdout[-4000:], result.stderr[-4000:])
    return result


def clean_env() -> dict[str, str]:
    """This environment without what could point a Python at the server's code or settings."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "SEIZURE_STATS_", "VIRTUAL_ENV"))
    }


def site_packages_bytes(python: Path) -> int:
    purelib = run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    total = 0
    for folder, _dirs, files in os.walk(purelib.stdout.strip()):
        total += sum(os.lstat(os.path.join(folder, name)).st_size for name in files)
    return total


def wheel_metadata(wheel: Path) -> tuple[list[str], Message]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        return names, Parser().parsestr(archive.read(metadata).decode())


def requirements(metadata: Message, extra: str | None = None) -> dict[str, Requirement]:
    """The wheel's requirements by name: those it always has, or those `extra` adds."""
    found = {}
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if (extra is None and marker is None) or (
            extra is not None and marker is not None and marker.evaluate({"extra": extra})
        ):
            found[requirement.name] = requirement
    return found


@dataclass(frozen=True)
class ClientVenv:
    python: Path
    wheel: Path
    installed_bytes: int  # what installing the wheel added to the venv's site-packages

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        # -I: only the venv's own site-packages, never this checkout, PYTHONPATH or user site.
        return run([self.python, "-I", "-c", script, *args], env=clean_env())


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> ClientVenv:
    """The client's wheel, built from clients/python and installed alone into a fresh venv."""
    base = tmp_path_factory.mktemp("client-package")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", CLIENT, "-w", base / "dist"])
    (wheel,) = (base / "dist").glob("seizure_stats_client-*.whl")
    run([sys.executable, "-m", "venv", base / "venv"], env=clean_env())
    python = base / "venv" / "bin" / "python"
    before = site_packages_bytes(python)
    run([python, "-m", "pip", "install", "--log", base / "pip.log", wheel], env=clean_env())
    return ClientVenv(python, wheel, site_packages_bytes(python) - before)


@pytest.mark.slow
def test_the_wheel_holds_the_client_and_installs_alone_and_small(client_venv: ClientVenv) -> None:
    names, metadata = wheel_metadata(client_venv.wheel)
    assert "seizure_stats/client.py" in names
    assert "seizure_stats/py.typed" in names
    assert {n.split("/")[0] for n in names} == {
        "seizure_stats",
        f"seizure_stats_client-{metadata['Version']}.dist-info",
    }
    assert set(requirements(metadata)) == {"httpx", "pydantic"}
    assert set(requirements(metadata, "numpy")) == {"numpy"}
    assert metadata.get_all("Provides-Extra") == ["numpy"]

    listed = client_venv.run(
        "import importlib.metadata as m, json;"
        "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
    )
    installed = {name.lower().replace("_", "-") for name in json.loads(listed.stdout)}
    assert {"seizure-stats-client", "httpx", "pydantic"} <= installed
    assert not installed & SERVER_DISTRIBUTIONS, installed & SERVER_DISTRIBUTIONS
    # Measured at about 14.1 MB (the service's install: about 178 MB).
    assert client_venv.installed_bytes < INSTALL_BYTES_BOUND, (
        f"the client's install adds {client_venv.installed_bytes / 1e6:.1f} MB to site-packages"
    )


# The modules that need numpy, the client's extra.
NUMPY_MODULES = ("seizure_stats.balance", "seizure_stats.training")
# Imports every module of the package but the numpy ones, then names the top-level modules loaded.
IMPORT_PROBE = """
import importlib, json, pkgutil, sys
import seizure_stats
for module in pkgutil.walk_packages(seizure_stats.__path__, "seizure_stats."):
    if module.name not in NUMPY_MODULES:
        importlib.import_module(module.name)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
""".replace("NUMPY_MODULES", repr(NUMPY_MODULES))


@pytest.mark.slow
def test_importing_the_client_loads_nothing_of_the_server(client_venv: ClientVenv) -> None:
    alone = json.loads(client_venv.run(IMPORT_PROBE).stdout)
    assert {"seizure_stats", "httpx", "pydantic"} <= set(alone)
    assert not set(alone) & SERVER_MODULES
    # Beside the server, where every one of them could be imported, the client still takes none.
    beside = run([sys.executable, "-c", IMPORT_PROBE], cwd=ROOT)
    assert not set(json.loads(beside.stdout)) & SERVER_MODULES

    for module in NUMPY_MODULES:
        refused = client_venv.run(
            "try:\n"
            f"    import {module}\n"
            "except ModuleNotFoundError as error:\n"
            "    print(error.name, '|', error)\n"
        )
        name, _, message = refused.stdout.strip().partition(" | ")
        assert name == "numpy"
        assert message.startswith(f"{module} needs numpy")
        assert NUMPY_HINT in message


def readme_training_snippet() -> str:
    """The first Python block under "## For a training job"."""
    text = README.read_text()
    section = text.split("\n## For a training job\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no Python block under 'For a training job'"
    return match.group(1)


# Runs a snippet (argv[1]) with a stand-in for torch, which a bare client venv lacks, that keeps
# what the loss was given; then prints the snippet's `stats` and that pos_weight as JSON.
SNIPPET_RUNNER = """
import json, sys
from types import SimpleNamespace

given = {}

def bce_with_logits_loss(*, pos_weight):
    given["pos_weight"] = pos_weight.value

torch = SimpleNamespace(
    tensor=lambda value: SimpleNamespace(value=value),
    nn=SimpleNamespace(BCEWithLogitsLoss=bce_with_logits_loss),
)
scope = {"__name__": "__main__", "torch": torch}
exec(compile(open(sys.argv[1]).read(), "README.md", "exec"), scope)
print(json.dumps({"stats": scope["stats"].model_dump(mode="json"), "loss": given}))
"""

# The balanced index, streamed without numpy; the numpy form refused with its hint.
INDEX_PROBE = """
import json, sys
from seizure_stats import SeizureStatsClient

with SeizureStatsClient(sys.argv[1], retries=0) as client:
    index = [[e.cache_file, e.window_idx] for e in client.balanced_index("demo-train")]
    try:
        client.balanced_index_arrays("demo-train")
    except ModuleNotFoundError as error:
        refused = [error.name, str(error)]
print(json.dumps({"index": index, "refused": refused}))
"""


@pytest.mark.slow
@pytest.mark.e2e
def test_the_readme_training_snippet_runs_in_the_bare_venv(
    client_venv: ClientVenv, live_server: str, database_url: str, tmp_path: Path
) -> None:
    # The demo dataset, as `seizure-stats demo --url` loads it, which the README's snippet names.
    token = make_token(database_url, "demo-loader", "write")
    loaded = CliRunner().invoke(main, ["demo", "--url", live_server, "--token", token])
    assert loaded.exit_code == 0, loaded.output
    defaults = {parameter.name: parameter.default for parameter in demo_command.params}
    body, missing = demo_manifest_bytes(defaults["recordings"], defaults["seed"])
    manifest = json.loads(body)
    (snapshot,) = httpx.get(f"{live_server}/api/v1/datasets/demo-train/snapshots").json()

    snippet = readme_training_snippet()
    assert snippet.count('"http://stats.internal:8000"') == 1
    script = tmp_path / "training_job.py"
    script.write_text(snippet.replace('"http://stats.internal:8000"', json.dumps(live_server)))
    ran = client_venv.run(SNIPPET_RUNNER, str(script))

    expected = oracle.expected_stats(manifest, set(missing), {"exclude_patient": ["aaaamcgo"]})
    printed, answer = ran.stdout.splitlines()
    assert printed == (
        f"[DATASET] pos_weight {expected['pos_weight']:.2f} (snapshot {snapshot['content_hash']})"
    )
    outcome = json.loads(answer)
    stats = outcome["stats"]
    assert stats["counts"] == expected["counts"]
    assert stats["pos_weight"] == expected["pos_weight"]
    assert stats["missing_windows"] == expected["missing_windows"] > 0
    assert stats["content_hash"] == snapshot["content_hash"]
    assert outcome["loss"] == {"pos_weight": expected["pos_weight"]}

    probed = json.loads(client_venv.run(INDEX_PROBE, live_server).stdout)
    _, order = oracle.expected_balanced(manifest, set(missing))
    assert [tuple(entry) for entry in probed["index"]] == order
    name, message = probed["refused"]
    assert name == "numpy"
    assert message.startswith("balanced_index_arrays needs numpy")
    assert NUMPY_HINT in message


@pytest.mark.slow
def test_installing_the_service_pulls_the_client_in(tmp_path: Path) -> None:
    """The service's wheel carries the server only and requires the client from clients/python;
    installing it resolves the client from there (a dry run: the full install is some 180 MB)."""
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", ROOT, "-w", tmp_path / "dist"])
    (wheel,) = (tmp_path / "dist").glob("seizure_stats-*.whl")
    names, metadata = wheel_metadata(wheel)
    assert "app/main.py" in names
    assert "app/_migrations/env.py" in names
    assert not [n for n in names if n.startswith("seizure_stats/")], "the client is its own wheel"
    assert requirements(metadata)["seizure-stats-client"].url == CLIENT.as_uri()

    report = tmp_path / "report.json"
    pip_install = [sys.executable, "-m", "pip", "install", "--quiet", "--report", report]
    run([*pip_install, "--dry-run", "--ignore-installed", wheel])
    install = {item["metadata"]["name"]: item for item in json.loads(report.read_text())["install"]}
    client = install["seizure-stats-client"]
    version = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]["version"]
    assert client["metadata"]["version"] == version
    assert client["download_info"]["url"] == CLIENT.as_uri()
    assert {"httpx", "pydantic", "fastapi", "numpy"} <= {n.lower() for n in install}
