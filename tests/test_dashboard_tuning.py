"""The dashboard as a person tuning a training run uses it, in a real browser (Debian chromium)
against a real server on SQLite and Postgres: every number shown is checked against the API.

Wrong options that leave the rest of the page working, the balanced selection, the breakdown's
search and pages, the histogram's composition and ticks, the files a scan skipped, the diff's
change of seizure ratio and pos_weight, and nouns that agree with their numbers.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.browser import backend_of, check_metric, get, post, relabelled, save_screenshot
from tests.test_diff import edited

pytestmark = pytest.mark.e2e
DATASET = "/api/v1/datasets/tusz-dev"
# A number followed by a plural noun it does not agree with: "1 windows".
BAD_PLURAL = re.compile(r"(?<![\d,.])1 (windows|snapshots|recordings|groups|files|patients)\b")


def load(base: str, database_url: str) -> dict[str, Any]:
    """Two snapshots of one dataset (two recordings missing), and a second, one-snapshot one."""
    token = make_token(database_url, "tuning-test", "write")
    old = manifests.generated(23, recordings=80, with_samples=True, odd_names=False)
    new = relabelled(edited(old, 23))
    first = post(base, f"{DATASET}/snapshots", token, content=json.dumps(old))["id"]
    second = post(base, f"{DATASET}/snapshots", token, content=json.dumps(new))["id"]
    names = manifests.recordings_of(new)
    missing = {names[3], names[9]}
    presence = {"missing": sorted(missing), "present": sorted(set(names) - missing)}
    post(base, f"{DATASET}/presence", token, json=presence)
    single = manifests.generated(5, recordings=8, odd_names=False)
    post(base, "/api/v1/datasets/single/snapshots", token, content=json.dumps(single))
    return {"token": token, "new": new, "first": first, "second": second, "missing": missing}


def texts(page: Any, selector: str) -> list[str]:
    found: list[str] = page.locator(selector).all_text_contents()
    return found


def send_form(page: Any, form: str, values: dict[str, str]) -> None:
    """Fills the fields of the page's #<form>-form and presses its #apply-<form> button."""
    for name, value in values.items():
        field = page.locator(f"#{form}-form [name={name}]")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click(f"#apply-{form}")


def assert_plurals_agree(page: Any) -> None:
    body = page.locator("main").inner_text()
    assert not BAD_PLURAL.search(body), BAD_PLURAL.search(body)


@pytest.mark.usefixtures("self_contained")
def test_options_errors_spoil_only_the_stats(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    data = load(base, database_url)
    breakdown = get(base, f"{DATASET}/breakdown", [("sort", "seizure"), ("order", "desc")])
    histogram = get(base, f"{DATASET}/histogram")
    for query, field in (
        ("beta=1.5&weighting=effective", "beta"),
        ("weighting=bogus", "weighting"),
    ):
        page.goto(f"/datasets/tusz-dev?{query}")
        error = page.locator(f"#error-{field}")
        assert error.is_visible(), query
        assert (
            "less than 1" in error.inner_text() if field == "beta" else "sqrt" in error.inner_text()
        )
        # The error sits inside the field's own label, beside it.
        assert page.locator(f"label:has([name={field}]) #error-{field}").count() == 1
        assert page.locator("#subset-results").count() == 0
        assert page.locator("#histogram-unknown").count() == 0
        drawn = page.locator("svg.histogram g.bin").evaluate_all(
            "bins => bins.map(b => Number(b.dataset.count))"
        )
        assert drawn == [b["count"] for b in histogram["bins"]]
        keys = page.locator("#breakdown-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.key)"
        )
        assert keys == [g["key"] for g in breakdown["groups"][:25]]
    save_screenshot(page, f"dashboard-bad-option-{backend_of(database_url)}", capsys)

    # The subset description renders the help text's `code` as code, without backticks.
    page.goto("/datasets/tusz-dev?session=s001")
    description = page.locator("#subset-description")
    assert "`" not in description.inner_text()
    assert texts(page, "#subset-description code") == ["s018", "patient_s018"]
    assert data["second"] > 0


def test_home_page_names_snapshots_plainly(
    page: Any, live_server: str, database_url: str, elsewhere: list[str]
) -> None:
    data = load(live_server, database_url)
    page.goto("/")
    cell = page.locator('tr[data-dataset="tusz-dev"] [data-field="snapshot"]')
    assert cell.inner_text() == f"#{data['second']} · 2 snapshots"
    single = get(live_server, "/api/v1/datasets/single")
    only = page.locator('tr[data-dataset="single"] [data-field="snapshot"]')
    assert only.inner_text() == f"#{single['current_snapshot']['id']} · 1 snapshot"
    assert " of " not in page.locator("#datasets").inner_text()
    assert_plurals_agree(page)
    assert elsewhere == []


def test_histogram_composition_ticks_and_threshold(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    load(base, database_url)
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto("/datasets/tusz-dev")
    histogram = get(base, f"{DATASET}/histogram")
    full = get(base, f"{DATASET}/histogram", [("category", "full_seizure")])
    bars = page.locator("svg.histogram g.bin").evaluate_all(
        "bins => bins.map(b => [Number(b.dataset.count), Number(b.dataset.full),"
        " Number(b.dataset.partial)])"
    )
    expected = [
        [b["count"], f["count"], b["count"] - f["count"]]
        for b, f in zip(histogram["bins"], full["bins"], strict=True)
    ]
    assert bars == expected
    # The last bin holds both partial and full windows; both are drawn, the full ones in red.
    assert expected[-1][1] > 0, expected[-1]
    assert expected[-1][2] > 0, expected[-1]
    last = page.locator("svg.histogram g.bin").last
    fills = last.locator("rect").evaluate_all("rs => rs.map(r => getComputedStyle(r).fill)")
    assert fills == ["rgb(245, 158, 11)", "rgb(220, 38, 38)"]
    heights = last.locator("rect").evaluate_all(
        "rs => rs.map(r => Number(r.getAttribute('height')))"
    )
    if not last.evaluate("g => g.classList.contains('cut')"):
        assert heights[1] / sum(heights) == pytest.approx(expected[-1][1] / expected[-1][0])
    ticks = [
        int(t.replace(",", "")) for t in texts(page, "svg.histogram text.tick[text-anchor=end]")
    ]
    step = ticks[1]
    assert ticks == list(range(0, step * len(ticks), step))
    assert int(str(step).rstrip("0") or "0") in (1, 2, 5), ticks
    threshold = page.locator("#histogram-threshold")
    assert float(threshold.evaluate("l => parseFloat(getComputedStyle(l).strokeWidth)")) >= 2
    assert "full seizure ≥" in page.locator("svg.histogram .threshold-label").text_content()
    # Readable on a laptop: the page fits the width of a 1366 by 768 screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    save_screenshot(page, f"dashboard-laptop-{backend_of(database_url)}", capsys, full_page=False)
    page.locator("#histogram").scroll_into_view_if_needed()
    save_screenshot(page, f"dashboard-laptop-histogram-{backend_of(database_url)}", capsys, False)


def test_history_explains_listed_against_present(
    page: Any, live_server: str, database_url: str
) -> None:
    base = live_server
    data = load(base, database_url)
    page.goto("/datasets/tusz-dev")
    stats = get(base, f"{DATASET}/stats")
    listed = get(base, f"{DATASET}/snapshots/{data['second']}")["counts"]["total"]
    assert listed == sum(len(entries) for entries in data["new"].values())
    assert stats["missing_windows"] > 0
    assert int(page.locator("#history-listed").get_attribute("data-value")) == listed
    missing = int(page.locator("#history-missing").get_attribute("data-value"))
    assert missing == stats["missing_windows"] == listed - stats["counts"]["total"]
    assert "only the present ones" in page.locator("#history-note").inner_text()


def test_balanced_selection_form(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    data = load(base, database_url)
    page.goto("/datasets/tusz-dev?category=seizure&category=no_seizure")
    assert page.locator("#balanced-results").count() == 0  # only once asked
    send_form(page, "balanced", {"full_ratio": "0.5", "background_ratio": "2", "seed": "7"})
    page.wait_for_url(re.compile(r".*seed=7.*"))
    params = [("category", "seizure"), ("category", "no_seizure")]
    params += [("full_ratio", "0.5"), ("background_ratio", "2"), ("seed", "7")]
    balanced = get(base, f"{DATASET}/balanced", params)
    counts, _ = oracle.expected_balanced(
        data["new"], data["missing"], {"category": ["seizure", "no_seizure"]}, 0.5, 2, 7
    )
    assert {c: balanced["counts"][c] for c in counts} == counts
    for key in ("partial_seizure", "full_seizure", "no_seizure", "total"):
        cell = page.locator(f'#balanced-counts [data-field="{key}"]')
        assert int(cell.get_attribute("data-value")) == balanced["counts"][key], key
    check_metric(page, "balanced-total", balanced["counts"]["total"], "count")
    check_metric(page, "balanced-ratio", balanced["seizure_ratio"], "percent")
    check_metric(page, "balanced-pos-weight", balanced["pos_weight"], "weight")
    check_metric(page, "balanced-missing", balanced["missing_skipped"], "count")
    # The filter of the page survives the balanced form, and the JSON link gives the same.
    assert page.locator("#filter-form input[name=category][value=no_seizure]").is_checked()
    url = page.locator("#balanced-url").get_attribute("href")
    assert get(base, url)["counts"] == balanced["counts"]
    page.locator("#balanced").scroll_into_view_if_needed()
    save_screenshot(page, f"dashboard-balanced-{backend_of(database_url)}", capsys)
    page.goto("/datasets/tusz-dev?full_ratio=-1")
    assert page.locator("#balanced-error-full_ratio").is_visible()
    assert page.locator("#subset-results").count() == 1


def test_breakdown_search_and_page_numbers(page: Any, live_server: str, database_url: str) -> None:
    base = live_server
    load(base, database_url)
    every = get(base, f"{DATASET}/breakdown", [("by", "recording"), ("limit", "1000")])
    page.goto("/datasets/tusz-dev?by=recording&sort=key&order=asc")
    pages = -(-every["total_groups"] // 25)
    assert pages >= 3
    assert texts(page, "#breakdown-pager .page, #breakdown-pager .current")[-1] == str(pages)
    page.click(f'#breakdown-pager a[data-page="{pages}"]')
    page.wait_for_url(re.compile(r".*offset=.*"))
    keys = page.locator("#breakdown-table tbody tr").evaluate_all("r => r.map(x => x.dataset.key)")
    assert keys == [g["key"] for g in every["groups"][(pages - 1) * 25 :]]
    assert page.locator("#breakdown-pager .current").inner_text() == str(pages)

    # Find one patient's recordings by a prefix of the name, without paging.
    patient = every["groups"][-1]["patient"]
    page.fill("#breakdown-search input[name=find]", patient[:5].upper())
    page.click("#breakdown-search button")
    page.wait_for_url(re.compile(r".*find=.*"))
    wanted = [g for g in every["groups"] if g["key"].startswith(patient[:5])]
    keys = page.locator("#breakdown-table tbody tr").evaluate_all("r => r.map(x => x.dataset.key)")
    assert keys == [g["key"] for g in wanted][:25]
    total = int(page.locator("#breakdown-total-groups").get_attribute("data-value"))
    assert total == len(wanted)
    shown = page.locator('#breakdown-table tbody tr [data-field="total"]').evaluate_all(
        "cells => cells.map(c => Number(c.dataset.value))"
    )
    assert shown == [g["counts"]["total"] for g in wanted][:25]
    # One patient by its full name: one group, a noun that agrees.
    page.goto(f"/datasets/tusz-dev?find={patient}")
    assert page.locator("#breakdown-total-groups").inner_text() == "1"
    assert "1 patient group;" in page.locator("#breakdown").inner_text()
    assert_plurals_agree(page)


def test_scan_issues_and_diff_rates(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    data = load(base, database_url)
    good = {"cache_file": "aaaa_s001_t000_windows.npz", "size": 10, "mtime_ns": 1}
    files = [
        good | {"status": "ok", "n_samples": 10, "n_pos": [0, 3, 10]},
        {"cache_file": "bbbb_s001_t000_windows.npz", "size": 5, "mtime_ns": 1}
        | {"status": "nan_labels", "reason": "labels hold NaN in 2 windows"},
        {"cache_file": "cccc_s002_t001_windows.npz", "size": 0, "mtime_ns": 1}
        | {"status": "unreadable", "reason": "BadZipFile: File is not a zip file"},
    ]
    part = {"scan_id": "nightly-1", "files": files}
    scan = post(base, "/api/v1/datasets/scanned/scan-parts", data["token"], json=part)
    snapshot = scan["snapshot"]["id"]
    issues = get(base, f"/api/v1/datasets/scanned/snapshots/{snapshot}/scan-issues")["issues"]
    assert len(issues) == 2
    page.goto("/datasets/scanned")
    rows = page.locator("#scan-issues-table tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.file, r.dataset.code, r.querySelector('.reason').innerText])"
    )
    assert rows == [[i["cache_file"], i["code"], i["reason"]] for i in issues]
    assert page.locator("#scan-issues-count").inner_text() == "2 files"
    page.goto("/datasets/tusz-dev")
    assert page.locator("#scan-issues-none").count() == 1

    first, second = data["first"], data["second"]
    page.goto(f"/datasets/tusz-dev/snapshots/{first}/diff/{second}")
    old = get(base, f"{DATASET}/stats", [("snapshot", str(first))])
    new = get(base, f"{DATASET}/stats", [("snapshot", str(second))])
    for row, field in (("diff-ratio", "seizure_ratio"), ("diff-pos-weight", "pos_weight")):
        cells = page.locator(f"#{row} [data-field]")
        values = [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]
        assert values == [old[field], new[field], new[field] - old[field]], row
    assert_plurals_agree(page)
    save_screenshot(page, f"dashboard-diff-rates-{backend_of(database_url)}", capsys)


@pytest.mark.usefixtures("self_contained")
def test_the_comma_form_of_category_keeps_its_filter(
    page: Any, live_server: str, database_url: str
) -> None:
    """`category=a,b`, as the README writes it: the boxes are ticked, and asking again keeps it."""
    base = live_server
    load(base, database_url)
    chosen = ["partial_seizure", "no_seizure"]
    expected = get(base, f"{DATASET}/stats", [("category", ",".join(chosen))])["counts"]["total"]
    unfiltered = get(base, f"{DATASET}/stats")["counts"]["total"]
    assert expected != unfiltered

    def shown_total() -> int:
        return int(page.locator('#subset-counts [data-field="total"]').get_attribute("data-value"))

    page.goto(f"/datasets/tusz-dev?category={','.join(chosen)}")
    ticked = page.locator("#filter-form input[name=category]:checked").evaluate_all(
        "boxes => boxes.map(b => b.value)"
    )
    assert sorted(ticked) == sorted(chosen)
    assert shown_total() == expected
    page.click("#apply-filter")
    page.wait_for_load_state()
    assert sorted(page.url.split("?", 1)[1].count(f"category={c}") for c in chosen) == [1, 1]
    assert shown_total() == expected


def test_folds_form(
    page: Any, live_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = live_server
    load(base, database_url)
    page.goto("/datasets/tusz-dev?category=seizure&category=no_seizure")
    assert page.locator("#folds-table").count() == 0  # only once asked
    send_form(page, "folds", {"folds_k": "3", "folds_seed": "5", "folds_stratify": "seizure"})
    page.wait_for_url(re.compile(r".*folds_seed=5.*"))
    answer = get(base, f"{DATASET}/folds", {"k": 3, "seed": 5, "stratify": "seizure"})
    rows = page.locator("#folds-table tbody tr")
    assert rows.count() == 3
    for index, fold in enumerate(answer["folds"]):
        row = rows.nth(index)

        def cell(field: str, row: Any = row) -> str:
            return str(row.locator(f'[data-field="{field}"]').get_attribute("data-value"))

        assert int(cell("patients")) == len(fold["patients"])
        assert int(cell("test_total")) == fold["test"]["counts"]["total"]
        assert int(cell("train_total")) == fold["train"]["counts"]["total"]
        assert float(cell("train_pos_weight")) == fold["train"]["pos_weight"]
        assert float(cell("balanced_pos_weight")) == fold["balanced_train"]["pos_weight"]
    spread = page.locator("#folds-spread")
    assert (
        float(spread.locator('[data-field="test_min"]').get_attribute("data-value"))
        == (answer["spread"]["test_seizure_ratio"]["min"])
    )
    # The page's filter survives the folds form, and the JSON link gives the same folds.
    assert page.locator("#filter-form input[name=category][value=no_seizure]").is_checked()
    url = page.locator("#folds-url").get_attribute("href")
    assert get(base, url)["folds"] == answer["folds"]
    page.locator("#folds").scroll_into_view_if_needed()
    save_screenshot(page, f"dashboard-folds-{backend_of(database_url)}", capsys)
