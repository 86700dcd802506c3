"""The dashboard in a real browser (headless Debian chromium) against a real uvicorn process.

The server runs `seizure-stats serve` on SQLite and on Postgres; the test loads generated data
through the HTTP API, uses the pages like a person would, and checks every number shown against
the API and the brute-force oracle. A screenshot of each run lands in test-artifacts/.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.browser import (
    ROOT,
    backend_of,
    check_metric,
    get,
    number,
    relabelled,
    run_curl,
    save_screenshot,
)
from tests.support.uploads import load
from tests.test_diff import edited

pytestmark = pytest.mark.e2e


@pytest.mark.usefixtures("self_contained")
def test_dataset_page_in_a_real_browser(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    token = make_token(database_url, "browser-test", "write")
    old = manifests.generated(17, recordings=70, with_samples=True, odd_names=False)
    new = relabelled(edited(old, 17))
    first = load(base, "tusz-dev", old, token=token)
    names = manifests.recordings_of(new)
    missing = {names[5], names[11]}
    second = load(base, "tusz-dev", new, missing, token=token)

    # The datasets page.
    page.goto("/")
    row = page.locator('tr[data-dataset="tusz-dev"]')
    everything = get(base, "/api/v1/datasets/tusz-dev/stats")
    assert everything["counts"] == oracle.expected_stats(new, missing)["counts"]
    assert (
        int(row.locator('[data-field="total"]').get_attribute("data-value"))
        == (everything["counts"]["total"])
    )
    assert number(row.locator('[data-field="total"]').inner_text()) == everything["counts"]["total"]

    # The dataset page: composition of the current snapshot.
    row.locator("a").first.click()
    page.wait_for_url("**/datasets/tusz-dev")
    check_metric(page, "composition-total", everything["counts"]["total"], "count")
    check_metric(page, "composition-seizure", everything["counts"]["seizure"], "count")
    check_metric(page, "composition-ratio", everything["seizure_ratio"], "percent")
    check_metric(page, "composition-pos-weight", everything["pos_weight"], "weight")

    # The filter form: two patients, seizure categories only, linear weighting.
    patients = sorted({oracle.names_of(n)[1] for n in names})
    chosen = [patients[1], patients[4], patients[6]]
    page.fill("input[name=patient]", ", ".join(chosen))
    page.check("input[name=category][value=partial_seizure]")
    page.check("input[name=category][value=no_seizure]")
    page.select_option("select[name=weighting]", "linear")
    page.click("#apply-filter")
    page.wait_for_url(re.compile(r".*patient=.*"))
    filters = {"patient": chosen, "category": ["partial_seizure", "no_seizure"]}
    params = [("patient", p) for p in chosen] + [("category", c) for c in filters["category"]]
    stats = get(base, "/api/v1/datasets/tusz-dev/stats", [*params, ("weighting", "linear")])
    expected = oracle.expected_stats(new, missing, filters, weighting="linear")
    assert stats["counts"] == expected["counts"]
    assert expected["counts"]["total"] > 0
    check_metric(page, "subset-total", stats["counts"]["total"], "count")
    check_metric(page, "subset-seizure", stats["counts"]["seizure"], "count")
    check_metric(page, "subset-ratio", stats["seizure_ratio"], "percent")
    check_metric(page, "subset-pos-weight", stats["pos_weight"], "weight")
    check_metric(page, "subset-sample-ratio", stats["sample_ratio"], "percent")
    check_metric(page, "subset-recordings", stats["recordings"], "count")
    assert stats["pos_weight"] == expected["pos_weight"]

    # The snippets reproduce the same numbers outside the browser.
    curl = page.locator("#curl-snippet").inner_text()
    by_curl = run_curl(curl)
    assert by_curl["counts"] == stats["counts"]
    assert by_curl["pos_weight"] == stats["pos_weight"]
    python = page.locator("#python-snippet").inner_text()
    printed = subprocess.run(
        [sys.executable, "-c", python], capture_output=True, check=True, text=True, cwd=ROOT
    ).stdout.split()
    assert [int(printed[0]), float(printed[1]), float(printed[2])] == [
        stats["counts"]["total"],
        stats["seizure_ratio"],
        stats["pos_weight"],
    ]

    # The patient table: the same subset, sorted by seizure windows; then by seizure ratio.
    def table_keys() -> list[str]:
        keys: list[str] = page.locator("#breakdown-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.key)"
        )
        return keys

    breakdown = get(
        base,
        "/api/v1/datasets/tusz-dev/breakdown",
        [*params, ("sort", "seizure"), ("order", "desc")],
    )
    assert table_keys() == [g["key"] for g in breakdown["groups"]]
    assert sum(g["counts"]["total"] for g in breakdown["groups"]) == stats["counts"]["total"]
    page.click("#breakdown-table th a[data-sort=seizure_ratio]")
    page.wait_for_url(re.compile(r".*sort=seizure_ratio.*"))
    by_ratio = get(
        base,
        "/api/v1/datasets/tusz-dev/breakdown",
        [*params, ("sort", "seizure_ratio"), ("order", "desc")],
    )
    assert table_keys() == [g["key"] for g in by_ratio["groups"]]
    shown = page.locator("#breakdown-table tbody tr").first.locator("[data-field=seizure_ratio]")
    assert float(shown.get_attribute("data-value")) == by_ratio["groups"][0]["seizure_ratio"]

    # The histogram of the same subset.
    histogram = get(base, "/api/v1/datasets/tusz-dev/histogram", params)
    zero, counts = oracle.expected_histogram(new, missing, filters, 20)
    assert (histogram["zero"], [b["count"] for b in histogram["bins"]]) == (zero, counts)
    drawn = page.locator("svg.histogram g.bin").evaluate_all(
        "bins => bins.map(b => Number(b.dataset.count))"
    )
    assert drawn == counts
    assert number(page.locator("#histogram-zero").inner_text()) == zero
    save_screenshot(page, f"dashboard-{backend_of(database_url)}", capsys)

    # The snapshot history and its diff.
    page.click(f'a.diff-link[href$="/snapshots/{first}/diff/{second}"]')
    page.wait_for_url(f"**/snapshots/{first}/diff/{second}")
    diff = get(base, f"/api/v1/datasets/tusz-dev/snapshots/{first}/diff/{second}")
    truth = oracle.expected_diff(old, new)
    assert diff["added"] == sum(truth["added"].values())
    for field in ("added", "removed", "changed", "unchanged"):
        assert int(page.locator(f"#diff-{field}").get_attribute("data-value")) == diff[field]
    recordings = page.locator("#diff-recording-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.recording)"
    )
    assert recordings == sorted(truth["recordings"])
    save_screenshot(page, f"dashboard-diff-{backend_of(database_url)}", capsys)


@pytest.mark.usefixtures("self_contained")
def test_api_docs_work_offline(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = page.goto("/docs")
    assert "script-src 'self' 'sha256-" in answer.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    # Open one operation: its parameters and schemas render under the same policy.
    page.locator(".opblock-summary-path").first.click()
    page.wait_for_selector(".opblock-body")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/breakdown" in p for p in paths)
    assert any("/snapshots/{a}/diff/{b}" in p.replace("\u200b", "") for p in paths)
    # A padlock on exactly the operations that need a token: the writes, reads being open.
    operations = page.locator(".opblock").evaluate_all(
        """ops => ops.map(o => [
            o.querySelector('.opblock-summary-method').innerText.toLowerCase(),
            o.querySelector('.opblock-summary-path').innerText.replaceAll('\u200b', ''),
            o.querySelector('.opblock-summary .authorization__btn') !== null])"""
    )
    spec = get(live_server, "/openapi.json")
    locked = {(m, p) for m, p, lock in operations if lock}
    assert locked == {(m, p) for m, p, _ in operations if spec["paths"][p][m].get("security")}
    assert ("post", "/api/v1/datasets/{dataset}/snapshots") in locked
    assert not any(m == "get" for m, _ in locked)
    if backend_of(database_url) == "sqlite":
        page.goto("/docs")
        page.wait_for_selector(".swagger-ui .opblock-summary-path")
        save_screenshot(page, "api-docs", capsys)
