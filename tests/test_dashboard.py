"""Dashboard pages rendered in-process: the numbers they carry equal the API's and the oracle's."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.dashboard.charts import full_per_bin, histogram_chart, tick_step
from app.dashboard.formatting import (
    code_spans,
    format_count,
    format_percent,
    format_quantity,
    format_weight,
)
from app.dashboard.snippets import curl_snippet, python_snippet
from seizure_stats.schemas.questions import StatsQuery
from seizure_stats.schemas.reports import HistogramBin, HistogramResponse
from tests.support import manifests, oracle
from tests.support.uploads import load


class Values(HTMLParser):
    """Collects `data-value` by element id, and every src/href the page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.assets: list[str] = []
        self.rows: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "id" in found and "data-value" in found:
            self.by_id[found["id"]] = found["data-value"]
        if tag in ("script", "img") and "src" in found:
            self.assets.append(found["src"])
        if tag == "link" and "href" in found:
            self.assets.append(found["href"])
        if tag == "tr" and "data-key" in found:
            self.rows.append({"key": found["data-key"]})
        if tag == "td" and "data-field" in found and self.rows:
            self.rows[-1][found["data-field"]] = found["data-value"]


def parse(html: str) -> Values:
    parser = Values()
    parser.feed(html)
    return parser


def test_formatting_for_people() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_count(None) == "—"
    assert format_percent(0.043505616314143486) == "4.35%"
    assert format_percent(0.5) == "50.00%"
    assert format_percent(1.0) == "100.00%"
    assert format_percent(0.0012345) == "0.123%"
    assert format_percent(0.000012345) == "0.00123%"
    assert format_percent(0.0) == "0%"
    assert format_percent(None) == "—"
    assert format_weight(4.688873859351182) == "4.6889"


def test_snippets_reproduce_the_query() -> None:
    query = StatsQuery(patient=["a b", "c'd"], category=["seizure"], snapshot=3, weighting="linear")
    curl = curl_snippet("http://stats:8000", "tusz-train", query)
    assert curl.startswith("curl -sG http://stats:8000/api/v1/datasets/tusz-train/stats")
    assert "--data-urlencode 'patient=a b'" in curl
    assert "'patient=c'\"'\"'d'" in curl  # shell-quoted
    assert "--data-urlencode category=seizure" in curl
    assert "--data-urlencode snapshot=3" in curl
    assert "--data-urlencode weighting=linear" in curl
    assert "basis" not in curl  # defaults stay out
    python = python_snippet("http://stats:8000", "tusz-train", query)
    assert "from seizure_stats.client import SeizureStatsClient" in python
    assert "SeizureStatsClient('http://stats:8000')" in python
    assert "patient=['a b', \"c'd\"]" in python
    assert "snapshot=3" in python
    assert "weighting='linear'" in python
    compile(python, "snippet", "exec")

    many = StatsQuery(recording=[f"r{i}" for i in range(150)], snapshot=1)
    long_curl = curl_snippet("http://stats:8000", "d", many)
    assert "-X POST" in long_curl
    body = json.loads(long_curl.split("-d ", 1)[1].strip("'"))
    assert body == {"recording": [f"r{i}" for i in range(150)], "snapshot": 1}


def test_datasets_page_lists_exact_numbers(client: TestClient) -> None:
    empty = client.get("/")
    assert empty.status_code == 200
    assert "seizure-stats demo" in empty.text
    manifest = manifests.generated(3, recordings=30)
    missing = set(manifests.recordings_of(manifest)[:2])
    load(client, "gen", manifest, missing)
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    stats = client.get("/api/v1/datasets/gen/stats").json()
    expected = oracle.expected_stats(manifest, missing)
    assert stats["counts"] == expected["counts"]
    row = re.search(r'<tr data-dataset="gen">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = dict(re.findall(r'data-field="(\w+)" data-value="([^"]*)"', row.group(1)))
    assert int(cells["total"]) == expected["counts"]["total"]
    assert int(cells["seizure"]) == expected["counts"]["seizure"]
    assert float(cells["seizure_ratio"]) == stats["seizure_ratio"]
    assert float(cells["pos_weight"]) == stats["pos_weight"]
    assert f">{format_count(expected['counts']['total'])}<" in row.group(1)


@pytest.mark.parametrize("with_samples", [True, False])
def test_dataset_page_shows_the_subset_the_form_asks_for(
    client: TestClient, with_samples: bool
) -> None:
    manifest = manifests.generated(5, recordings=40, with_samples=with_samples)
    names = manifests.recordings_of(manifest)
    missing = {names[4]}
    load(client, "gen", manifest, missing)
    patients = sorted({oracle.names_of(n)[1] for n in names})[:3]
    filters = {"patient": patients, "category": ["partial_seizure", "no_seizure"]}
    params: list[tuple[str, Any]] = [("patient", ", ".join(patients))]
    params += [("category", c) for c in filters["category"]] + [("weighting", "linear")]
    page = client.get("/datasets/gen", params=params)
    assert page.status_code == 200
    values = parse(page.text)
    subset = [("patient", p) for p in patients] + [("category", c) for c in filters["category"]]
    stats = client.get(
        "/api/v1/datasets/gen/stats", params=[*subset, ("weighting", "linear")]
    ).json()
    expected = oracle.expected_stats(manifest, missing, filters, weighting="linear")
    assert stats["counts"] == expected["counts"]
    assert int(values.by_id["subset-total"]) == expected["counts"]["total"]
    assert int(values.by_id["subset-seizure"]) == expected["counts"]["seizure"]
    assert float(values.by_id["subset-ratio"]) == expected["seizure_ratio"]
    assert float(values.by_id["subset-pos-weight"]) == stats["pos_weight"]
    assert int(values.by_id["subset-recordings"]) == expected["recordings"]
    everything = oracle.expected_stats(manifest, missing)
    assert int(values.by_id["composition-total"]) == everything["counts"]["total"]
    # The patient table holds the same subset, sorted by seizure windows, largest first.
    breakdown = client.get(
        "/api/v1/datasets/gen/breakdown",
        params=[*subset, ("sort", "seizure"), ("order", "desc"), ("limit", "25")],
    ).json()
    assert [r["key"] for r in values.rows] == [g["key"] for g in breakdown["groups"]]
    for row, group in zip(values.rows, breakdown["groups"], strict=True):
        assert int(row["total"]) == group["counts"]["total"]
        assert float(row["seizure_ratio"]) == group["seizure_ratio"]
    assert int(values.by_id["breakdown-total-groups"]) == breakdown["total_groups"]
    if with_samples:
        histogram = client.get("/api/v1/datasets/gen/histogram", params=subset).json()
        assert int(values.by_id["histogram-zero"]) == histogram["zero"]
        drawn = re.findall(r'<g class="bin[^"]*" data-count="(\d+)"', page.text)
        assert [int(n) for n in drawn] == [b["count"] for b in histogram["bins"]]
    else:
        assert 'id="histogram-unknown"' in page.text


def test_dataset_page_reports_bad_input_and_unknown_names(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    page = client.get("/datasets/small?basis=sample")
    assert page.status_code == 200
    assert "basis=sample needs per-window sample counts" in page.text
    bad = client.get("/datasets/small?category=bogus")
    assert bad.status_code == 200
    assert 'class="alert error"' in bad.text
    missing = client.get("/datasets/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "does not exist" in missing.text
    assert client.get("/datasets/small?snapshot=999").status_code == 404


def test_diff_page_and_compare_form(client: TestClient) -> None:
    a = load(client, "small", manifests.SMALL, set())
    changed = json.loads(json.dumps(manifests.SMALL))
    changed["no_seizure"].pop()
    changed["partial_seizure"].append(changed["no_seizure"].pop(0))
    b = load(client, "small", changed)
    redirect = client.get(f"/datasets/small/diff?a={a}&b={b}", follow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == f"/datasets/small/snapshots/{a}/diff/{b}"
    page = client.get(redirect.headers["location"])
    values = parse(page.text)
    assert (values.by_id["diff-removed"], values.by_id["diff-changed"]) == ("1", "1")
    assert values.by_id["diff-unchanged"] == "10"
    history = client.get("/datasets/small").text
    assert f'href="/datasets/small/snapshots/{a}/diff/{b}"' in history
    assert client.get(f"/datasets/small/snapshots/{a}/diff/77").status_code == 404


def test_pages_and_docs_load_nothing_from_elsewhere(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    for path in ("/", "/datasets/small", "/docs"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "cdn" not in page.text.lower(), path
        assets = parse(page.text).assets + re.findall(
            r"""(?:url|src)\s*[:=]\s*['"]([^'"]+)""", page.text
        )
        for asset in assets:
            assert asset.startswith("/"), (path, asset)
            assert client.get(asset).status_code == 200, (path, asset)
    assert "swagger-ui-bundle.js" in client.get("/docs").text
    assert client.get("/static/docs/swagger-ui.css").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    # The pages are not API endpoints.
    assert "/datasets/{name}" not in client.get("/openapi.json").json()["paths"]


def test_histogram_chart_cuts_a_towering_bar() -> None:
    def response(counts: list[int]) -> HistogramResponse:
        n = len(counts)
        bins = [HistogramBin(lower=i / n, upper=(i + 1) / n, count=c) for i, c in enumerate(counts)]
        return HistogramResponse(
            dataset="d",
            snapshot=1,
            content_hash="sha256:x",
            zero=0,
            bins=bins,
            total=sum(counts),
            missing_windows=0,
        )

    chart = histogram_chart(response([10, 20, 5, 1000]))
    assert chart is not None
    # The second tallest bar with some headroom (27), up to the next round tick.
    assert chart.scale_max == 30
    assert [value for value, _ in chart.y_ticks] == [0, 10, 20, 30]
    assert [bar.cut for bar in chart.bars] == [False, False, False, True]
    assert chart.bars[1].height < chart.bars[3].height == chart.height - chart.top
    even = histogram_chart(response([10, 20, 30]))
    assert even is not None
    assert even.scale_max == 30
    assert not any(bar.cut for bar in even.bars)
    assert [value for value, _ in even.y_ticks] == [0, 10, 20, 30]
    # The histogram: ticks of 0/48/97 became 0/50/100.
    assert [value for value, _ in histogram_chart(response([97, 60])).y_ticks] == [0, 50, 100]
    assert histogram_chart(response([0, 0])) is None


def test_histogram_bars_show_their_full_seizure_windows_stacked() -> None:
    def response(counts: list[int]) -> HistogramResponse:
        bins = [HistogramBin(lower=i / 2, upper=(i + 1) / 2, count=c) for i, c in enumerate(counts)]
        return HistogramResponse(
            dataset="d", snapshot=1, content_hash="h", zero=0, bins=bins, total=0, missing_windows=0
        )

    chart = histogram_chart(response([400, 1324]), [0, 1280])
    assert chart is not None
    mixed = chart.bars[1]
    assert (mixed.partial, mixed.full) == (44, 1280)
    assert mixed.full_height == pytest.approx(mixed.height * 1280 / 1324)
    assert (chart.bars[0].partial, chart.bars[0].full_height) == (400, 0)


def test_full_seizure_windows_of_each_bin_follow_from_the_threshold() -> None:
    def response(counts: list[int]) -> HistogramResponse:
        n = len(counts)
        bins = [HistogramBin(lower=i / n, upper=(i + 1) / n, count=c) for i, c in enumerate(counts)]
        return HistogramResponse(
            dataset="d", snapshot=1, content_hash="h", zero=0, bins=bins, total=0, missing_windows=0
        )

    # Twenty bins, threshold 0.99: the last bin [0.95, 1] holds 44 partial and 1,280 full.
    counts = [5] * 19 + [1324]
    assert full_per_bin(response(counts), 0.99, 1280) == [0] * 19 + [1280]
    # Threshold on an edge: the bins from it up are all full, none straddles.
    assert full_per_bin(response([3, 4, 6, 2]), 0.5, 8) == [0, 0, 6, 2]
    # Counts that cannot come from consistent categories: no guess.
    assert full_per_bin(response([3, 4, 6, 2]), 0.5, 9) is None
    assert full_per_bin(response(counts), 0.99, 1325) is None
    assert full_per_bin(response(counts), 0.99, -1) is None


@pytest.mark.parametrize(
    ("largest", "step"),
    [
        (1, 1),
        (4, 1),
        (5, 2),
        (9, 5),
        (27, 10),
        (97, 50),
        (1000, 500),
        (1320, 500),
        (45_000, 20_000),
    ],
)
def test_histogram_ticks_are_round(largest: int, step: int) -> None:
    assert tick_step(largest) == step


PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "style-src-attr 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; script-src 'self'"
)


def test_every_answer_refuses_sniffing_and_framing(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    for path in ("/", "/datasets/small", "/static/style.css", "/api/v1/datasets", "/nope"):
        answer = client.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["content-security-policy"] == PAGE_POLICY, path
    # The docs page starts Swagger UI with one inline script: allowed by its hash, nothing else.
    docs = client.get("/docs")
    (script,) = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert docs.headers["content-security-policy"] == f"{PAGE_POLICY} 'sha256-{digest}'"
    assert docs.headers["x-frame-options"] == "DENY"


def test_head_answers_like_get_without_a_body(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    paths = (
        "/healthz",
        "/readyz",
        "/api/v1/datasets",
        "/api/v1/datasets/small/stats?patient=aaaaaaaa",
        "/api/v1/datasets/small/balanced/index",
        "/",
        "/datasets/small",
        "/docs",
        "/static/style.css",
        "/openapi.json",
    )
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert (head.status_code, get.status_code) == (200, 200), path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == get.headers.get(name), (path, name)
    metrics = client.head("/metrics")
    assert (metrics.status_code, metrics.content) == (200, b"")
    assert metrics.headers["content-type"] == client.get("/metrics").headers["content-type"]
    assert client.head("/api/v1/datasets/nope").status_code == 404
    # Routes without GET still refuse HEAD.
    refused = client.head("/api/v1/datasets/small/presence")
    assert refused.status_code == 405


def page_errors(text: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'<p class="alert error">(.*?)</p>', text)]


def test_blank_form_boxes_mean_no_filter_but_empty_values_are_shown_as_errors(
    client: TestClient,
) -> None:
    """Without its script the form sends every box, `patient=` included: a blank box is no
    filter. An empty value inside a list is the same mistake as on the API: said on the page."""
    load(client, "small", manifests.SMALL, set())
    blank = client.get("/datasets/small?patient=&exclude_patient=%20&session=&recording=&beta=")
    assert blank.status_code == 200
    assert page_errors(blank.text) == []
    values = Values()
    values.feed(blank.text)
    assert int(values.by_id["subset-total"]) == 12
    for query, detail in [
        ("patient=a,,b", "patient: empty value in 'a,,b'"),
        ("exclude_patient=,", "exclude_patient: empty value in ','"),
        ("session=s001,", "session: empty value in 's001,'"),
        ("recording=x&recording=", "recording: empty value in 'x, '"),
        ("category=", "category: empty value in ''"),
    ]:
        page = client.get(f"/datasets/small?{query}")
        assert page.status_code == 200, query
        assert page_errors(page.text) == [
            f"{detail}: leave the parameter out (or send []) for no filter"
        ], query
        assert 'id="subset-results"' not in page.text


def test_nouns_agree_with_their_number() -> None:
    assert format_quantity(1, "window") == "1 window"
    assert format_quantity(0, "window") == "0 windows"
    assert format_quantity(55_872, "snapshot") == "55,872 snapshots"


def test_help_text_backticks_become_code() -> None:
    text = "these sessions (`s018` in any patient, or `patient_s018` in one): <b>"
    assert str(code_spans(text)) == (
        "these sessions (<code>s018</code> in any patient, or <code>patient_s018</code> in one)"
        ": &lt;b&gt;"
    )
    assert str(code_spans("a ` b")) == "a ` b"


def fold_rows(page: str) -> list[dict[str, str]]:
    """Each row of the folds table as its cells' data-field: data-value."""
    table = page[page.index('id="folds-table"') : page.index("</table>", page.index("folds-table"))]
    return [
        dict(re.findall(r'data-field="(\w+)" data-value="([^"]*)"', row))
        for row in re.split(r"<tr data-fold=", table)[1:]
    ]


def test_dataset_page_shows_the_folds_the_form_asks_for(client: TestClient) -> None:
    manifest = manifests.generated(47, recordings=90)
    names = manifests.recordings_of(manifest)
    load(client, "gen", manifest, {names[2], names[30]})
    assert 'id="folds-table"' not in client.get("/datasets/gen").text  # only once asked
    page = client.get(
        "/datasets/gen",
        params={"folds_k": "4", "folds_seed": "3", "weighting": "linear", "patient": ""},
    ).text
    answer = client.get(
        "/api/v1/datasets/gen/folds", params={"k": 4, "seed": 3, "weighting": "linear"}
    ).json()
    rows = fold_rows(page)
    assert len(rows) == 4
    for row, fold in zip(rows, answer["folds"], strict=True):
        balanced = fold["balanced_train"]
        assert row == {
            "patients": str(len(fold["patients"])),
            "test_total": str(fold["test"]["counts"]["total"]),
            "test_ratio": str(fold["test"]["seizure_ratio"]),
            "train_total": str(fold["train"]["counts"]["total"]),
            "train_ratio": str(fold["train"]["seizure_ratio"]),
            "train_pos_weight": str(fold["train"]["pos_weight"]),
            "balanced_pos_weight": str(balanced["pos_weight"]) if balanced else "",
        }
    spread = dict(
        re.findall(
            r'data-field="(\w+)" data-value="([^"]*)"', page[page.index('id="folds-spread"') :]
        )[:4]
    )
    assert spread == {
        f"{part}_{end}": str(answer["spread"][f"{part}_seizure_ratio"][end])
        for part in ("test", "train")
        for end in ("min", "max")
    }
    link = html.unescape(re.search(r'id="folds-url" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert client.get(link).json()["folds"] == answer["folds"]
    # The rest of the page keeps its options, and the forms keep each other's.
    assert 'name="folds_k" value="4"' in page.replace('type="hidden" ', "")


def test_the_folds_form_names_what_is_wrong(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    low = client.get("/datasets/small", params={"folds_k": "1"}).text
    assert re.search(
        r'id="folds-error-folds_k" role="alert">Input should be greater than or equal to 2<', low
    )
    many = client.get("/datasets/small", params={"folds_k": "3"}).text
    assert 'id="folds-error">k=3 is greater than the number of patients (2)</p>' in many
    warned = client.get("/datasets/small", params={"folds_k": "2"}).text
    assert "its training part has no partial_seizure window" in warned
    assert 'id="composition-total"' in warned  # the rest of the page is there
