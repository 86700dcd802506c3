"""The browser tests' fixtures: headless Debian chromium, a live server, and a page that
watches every request the browser makes elsewhere and every policy refusal; and their helpers.

Registered from tests/conftest.py, so every browser test module gets the fixtures.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ci import cannot_run

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, which would break later tests that start one of their own (asyncio.run).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        cannot_run("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        cannot_run(f"{CHROMIUM} is missing (scripts/test installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def elsewhere() -> list[str]:
    """URLs the browser requested from anywhere but the server under test."""
    return []


@pytest.fixture
def refused() -> list[str]:
    """What the browser refused under the pages' Content-Security-Policy (from its console), and
    answers of ours that lack a security header."""
    return []


@pytest.fixture
def self_contained(elsewhere: list[str], refused: list[str]) -> Iterator[None]:
    """For a test whose pages must load nothing but the service's own files and break none of
    its security headers: both are checked once the test is done."""
    yield
    assert elsewhere == []
    assert refused == []


@pytest.fixture
def page(browser: Any, live_server: str, elsewhere: list[str], refused: list[str]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server)
    page = context.new_page()

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    def answered(response: Any) -> None:
        # Every page and asset of ours says nosniff; every page refuses to be framed.
        if not response.url.startswith(live_server):
            return
        headers = response.headers
        if headers.get("x-content-type-options") != "nosniff":
            refused.append(f"no nosniff: {response.url}")
        if headers.get("content-type", "").startswith("text/html") and (
            headers.get("x-frame-options") != "DENY"
            or "frame-ancestors 'none'" not in headers.get("content-security-policy", "")
        ):
            refused.append(f"framing allowed: {response.url}")

    page.on("console", console)
    page.on("response", answered)

    def record(request: Any) -> None:
        # blob: and data: URLs are made inside the page (Swagger UI's web worker, icons).
        if not request.url.startswith((live_server, "blob:", "data:")):
            elsewhere.append(request.url)

    page.on("request", record)
    page.set_default_timeout(20_000)
    yield page
    context.close()


def relabelled(manifest: dict[str, Any]) -> dict[str, Any]:
    """Label counts that agree with each entry's category after edits moved entries around."""
    for category, entries in manifest.items():
        for entry in entries:
            n_pos = entry.get("n_pos", 0)
            if category == "no_seizure":
                n_pos = 0
            elif category == "full_seizure":
                n_pos = 15360
            elif not 0 < n_pos < 15360 * 0.99:
                n_pos = 7000
            entry |= {"n_pos": n_pos, "n_samples": 15360}
    return manifest


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def save_screenshot(
    page: Any, name: str, capsys: pytest.CaptureFixture[str], full_page: bool = True
) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    with capsys.disabled():
        print(f"\nscreenshot: {path.relative_to(ROOT)}")
    return path


def number(text: str) -> float:
    """'12,345' -> 12345.0; '4.35%' -> 4.35."""
    return float(text.replace(",", "").replace("%", "").strip())


def decimals(text: str) -> int:
    digits = text.replace("%", "").strip()
    return len(digits.split(".")[1]) if "." in digits else 0


def check_metric(page: Any, element_id: str, value: float, kind: str) -> None:
    """The shown number is the API's value formatted for people; the exact one rides along."""
    metric = page.locator(f"#{element_id}")
    assert float(metric.get_attribute("data-value")) == value, element_id
    shown = metric.locator(".value").inner_text()
    if kind == "count":
        assert re.fullmatch(r"\d{1,3}(,\d{3})*", shown), shown
        assert number(shown) == value, (element_id, shown, value)
    else:
        scale = 100 if kind == "percent" else 1
        tolerance = 0.5 * 10 ** -decimals(shown) + 1e-12
        assert abs(number(shown) - value * scale) <= tolerance, (element_id, shown, value)


def run_curl(snippet: str) -> dict[str, Any]:
    """Run the curl snippet as pasted; without curl, replay exactly what it asks for."""
    if shutil.which("curl"):
        done = subprocess.run(["bash", "-c", snippet], capture_output=True, check=True)
        result: dict[str, Any] = json.loads(done.stdout)
        return result
    words = shlex.split(snippet.replace("\\\n", " "))
    assert words[:2] == ["curl", "-sG"], words
    pairs = [tuple(v.split("=", 1)) for k, v in zip(words[3::2], words[4::2], strict=True)]
    assert all(k == "--data-urlencode" for k in words[3::2])
    return get(words[2].split("/api/")[0], "/api/" + words[2].split("/api/")[1], pairs)


def get(base: str, path: str, params: Any = None) -> Any:
    response = httpx.get(f"{base}{path}", params=params, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def post(base: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """A write to a live server that must succeed; its JSON answer."""
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.post(f"{base}{path}", timeout=60, headers=headers, **kwargs)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result
