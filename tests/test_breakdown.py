"""Breakdowns and histograms equal a brute-force count and add up to the stats of that filter."""

from __future__ import annotations

import csv
import io
import json
import random
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.api.streams import text_cell
from app.db import run_write
from app.ingest.importer import store_parsed
from app.ingest.manifest import parse_manifest
from seizure_stats.schemas.reports import BREAKDOWN_SORTS
from tests.support import manifests, oracle
from tests.support.uploads import load

SORT_FIELDS = BREAKDOWN_SORTS


def params_of(filters: dict[str, list[str]], **options: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, values in filters.items() for v in values] + [
        (k, str(v)) for k, v in options.items()
    ]


def random_filters(rng: random.Random, names: list[str]) -> dict[str, list[str]]:
    patients = sorted({oracle.names_of(n)[1] for n in names})
    sessions = sorted({s for n in names if (s := oracle.names_of(n)[2])})
    filters: dict[str, list[str]] = {}
    if rng.random() < 0.4:
        filters["patient"] = rng.sample(patients, min(4, len(patients)))
    if rng.random() < 0.3:
        filters["exclude_patient"] = rng.sample(patients, 2)
    if rng.random() < 0.3:
        filters["session"] = rng.sample(sessions, min(3, len(sessions)))
    if rng.random() < 0.2:
        filters["recording"] = rng.sample(names, 10)
    if rng.random() < 0.4:
        filters["category"] = rng.sample(["partial_seizure", "full_seizure", "no_seizure"], 2)
    return filters


def sort_value(group: dict[str, Any], field: str) -> Any:
    if field == "key":
        return group["key"]
    if field in ("seizure_ratio", "share", "recordings", "missing_windows"):
        return group[field]
    return group["counts"][field]


def expected_order(groups: list[dict[str, Any]], field: str, order: str) -> list[str]:
    """Sorted by the field, ties by key ascending (a stable sort of key-ordered groups)."""
    ordered = sorted(groups, key=lambda g: sort_value(g, field), reverse=order == "desc")
    return [g["key"] for g in ordered]


def test_small_manifest_by_patient_hand_checked(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/breakdown?by=patient").json()
    assert answer["total_groups"] == 2
    assert answer["totals"]["total"] == 12
    a, b = answer["groups"]
    assert (a["key"], a["patient"], a["recordings"]) == ("aaaaaaaa", "aaaaaaaa", 2)
    assert a["counts"] == {
        "no_seizure": 5,
        "partial_seizure": 3,
        "full_seizure": 1,
        "seizure": 4,
        "total": 9,
    }
    assert a["seizure_ratio"] == 4 / 9
    assert a["share"] == 9 / 12
    assert b["key"] == "bbbbbbbb"
    assert b["counts"]["total"] == 3
    assert b["seizure_ratio"] == 1 / 3
    assert b["samples"] == {"positive": None, "total": None}
    assert b["sample_ratio"] is None

    sessions = client.get("/api/v1/datasets/small/breakdown?by=session").json()["groups"]
    assert [(g["key"], g["counts"]["total"]) for g in sessions] == [
        ("aaaaaaaa_s001", 5),
        ("aaaaaaaa_s002", 4),
        ("bbbbbbbb_s001", 3),
    ]
    # A group's key is a valid value of the filter of the same name.
    one = client.get("/api/v1/datasets/small/stats?session=aaaaaaaa_s002").json()
    assert one["counts"] == sessions[1]["counts"]

    categories = client.get("/api/v1/datasets/small/breakdown?by=category").json()["groups"]
    assert [(g["key"], g["counts"]["total"], g["recordings"]) for g in categories] == [
        ("full_seizure", 2, 2),
        ("no_seizure", 7, 3),
        ("partial_seizure", 3, 2),
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_random_breakdowns_match_brute_force_and_add_up_to_stats(
    client: TestClient, seed: int
) -> None:
    rng = random.Random(seed)
    manifest = manifests.generated(seed, recordings=60, with_samples=seed % 2 == 1)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 6))
    load(client, "gen", manifest, missing)
    for _ in range(12):
        filters = random_filters(rng, names)
        stats = client.get("/api/v1/datasets/gen/stats", params=params_of(filters)).json()
        for by in ("patient", "session", "recording", "category"):
            answer = client.get(
                "/api/v1/datasets/gen/breakdown",
                params=params_of(filters, by=by, limit=100_000),
            ).json()
            groups = answer["groups"]
            expected = oracle.expected_breakdown(manifest, missing, filters, by)
            assert answer["total_groups"] == len(expected) == len(groups)
            assert [g["key"] for g in groups] == [e["key"] for e in expected]
            for got, want in zip(groups, expected, strict=True):
                for field in ("counts", "seizure_ratio", "share", "recordings", "missing_windows"):
                    assert got[field] == want[field], (by, got["key"], field)
                if seed % 2 == 1:
                    assert got["samples"] == {
                        "positive": want["positive"],
                        "total": want["samples"],
                    }
            # The groups add up to the stats answer of the same filter.
            assert answer["totals"] == stats["counts"]
            assert answer["missing_windows"] == stats["missing_windows"]
            for field in ("no_seizure", "partial_seizure", "full_seizure", "seizure", "total"):
                assert sum(g["counts"][field] for g in groups) == stats["counts"][field]
            assert sum(g["missing_windows"] for g in groups) == stats["missing_windows"]
            if by in ("patient", "session", "recording"):
                assert sum(g["recordings"] for g in groups) == stats["recordings"]


@pytest.mark.parametrize("by", ["patient", "recording", "category"])
def test_every_sort_and_paging(client: TestClient, by: str) -> None:
    manifest = manifests.generated(21, recordings=45)
    names = manifests.recordings_of(manifest)
    missing = set(names[::9])
    load(client, "gen", manifest, missing)
    expected = oracle.expected_breakdown(manifest, missing, {}, by)
    for field in SORT_FIELDS:
        for order in ("asc", "desc"):
            whole = client.get(
                "/api/v1/datasets/gen/breakdown",
                params={"by": by, "sort": field, "order": order, "limit": 1000},
            ).json()
            keys = [g["key"] for g in whole["groups"]]
            assert keys == expected_order(expected, field, order), (field, order)
            paged: list[str] = []
            for offset in range(0, len(expected) + 7, 7):
                page = client.get(
                    "/api/v1/datasets/gen/breakdown",
                    params={"by": by, "sort": field, "order": order, "limit": 7, "offset": offset},
                ).json()
                assert page["total_groups"] == len(expected)
                assert (page["limit"], page["offset"]) == (7, offset)
                paged += [g["key"] for g in page["groups"]]
            assert paged == keys


def test_default_page_and_csv_export(client: TestClient) -> None:
    manifest = manifests.generated(31, recordings=130, with_samples=True, odd_names=False)
    names = manifests.recordings_of(manifest)
    missing = {names[3]}
    load(client, "gen", manifest, missing)
    page = client.get("/api/v1/datasets/gen/breakdown?by=recording").json()
    assert page["limit"] == 100
    assert len(page["groups"]) == 100
    assert page["total_groups"] == 130

    response = client.get("/api/v1/datasets/gen/breakdown?by=recording&format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-total-groups"] == "130"
    assert "gen-by-recording.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    whole = client.get("/api/v1/datasets/gen/breakdown?by=recording&limit=1000").json()
    assert len(rows) == 130
    for row, group in zip(rows, whole["groups"], strict=True):
        assert row["key"] == row["recording"] == group["key"]
        assert int(row["total"]) == group["counts"]["total"]
        assert int(row["seizure"]) == group["counts"]["seizure"]
        assert float(row["seizure_ratio"]) == group["seizure_ratio"]
        assert float(row["share"]) == group["share"]
        assert int(row["positive_samples"]) == group["samples"]["positive"]
        assert int(row["missing_windows"]) == group["missing_windows"]
        assert row["category"] == ""

    paged = client.get("/api/v1/datasets/gen/breakdown?by=patient&format=csv&limit=2&offset=1")
    assert len(list(csv.DictReader(io.StringIO(paged.text)))) == 2


def test_post_takes_long_filters(client: TestClient) -> None:
    manifest = manifests.generated(41, recordings=300, odd_names=False)
    names = manifests.recordings_of(manifest)
    load(client, "gen", manifest, set())
    chosen = names[::2]
    body = {"recording": chosen, "by": "patient", "sort": "seizure", "order": "desc"}
    answer = client.post("/api/v1/datasets/gen/breakdown", json=body)
    assert answer.status_code == 200, answer.text
    expected = oracle.expected_breakdown(manifest, set(), {"recording": chosen}, "patient")
    assert answer.json()["total_groups"] == len(expected)
    assert [g["key"] for g in answer.json()["groups"]] == expected_order(
        expected, "seizure", "desc"
    )[:100]


def test_breakdown_refuses_bad_requests(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    for query in ("by=token", "sort=pos_weight", "order=up", "limit=0", "offset=-1", "bogus=1"):
        response = client.get(f"/api/v1/datasets/small/breakdown?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"] == "invalid_request"
    assert client.get("/api/v1/datasets/nope/breakdown").status_code == 404
    assert client.get("/api/v1/datasets/small/breakdown?snapshot=999").status_code == 404


@pytest.mark.parametrize("bins", [1, 7, 20, 100])
def test_histogram_matches_brute_force(client: TestClient, bins: int) -> None:
    rng = random.Random(bins)
    manifest = manifests.generated(bins, recordings=50, with_samples=True)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 4))
    # Fractions exactly on a bin edge, and a full window, land in the documented bins.
    manifest["partial_seizure"][0]["n_pos"] = 15360 // 2
    manifest["partial_seizure"][1]["n_pos"] = 15360 // 4
    manifest["full_seizure"][0]["n_pos"] = 15360
    load(client, "gen", manifest, missing)
    for _ in range(6):
        filters = random_filters(rng, names)
        answer = client.get(
            "/api/v1/datasets/gen/histogram", params=params_of(filters, bins=bins)
        ).json()
        stats = client.get("/api/v1/datasets/gen/stats", params=params_of(filters)).json()
        zero, counts = oracle.expected_histogram(manifest, missing, filters, bins)
        assert answer["zero"] == zero
        assert [b["count"] for b in answer["bins"]] == counts
        assert [(b["lower"], b["upper"]) for b in answer["bins"]] == [
            (i / bins, (i + 1) / bins) for i in range(bins)
        ]
        assert answer["total"] == stats["counts"]["total"]
        assert answer["missing_windows"] == stats["missing_windows"]


def test_histogram_needs_sample_counts(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    response = client.get("/api/v1/datasets/small/histogram")
    assert response.status_code == 422
    # Its detail: test_stats.test_questions_that_need_sample_counts_say_how_to_get_them.
    assert client.get("/api/v1/datasets/small/histogram?bins=0").status_code == 422


def test_openapi_documents_the_new_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/datasets/{dataset}/breakdown",
        "/api/v1/datasets/{dataset}/histogram",
        "/api/v1/datasets/{dataset}/snapshots/{a}/diff/{b}",
    ):
        assert path in paths
    parameters = {
        p["name"] for p in paths["/api/v1/datasets/{dataset}/breakdown"]["get"]["parameters"]
    }
    assert {"by", "sort", "order", "limit", "offset", "format", "patient", "category"} <= parameters
    assert json.dumps(paths).count("text/csv") >= 1


def test_histogram_reads_every_window_when_labels_disagree(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    # A manifest stored without the category check (as the local demo and scan paths may):
    # one no_seizure window carries positive samples, so the rollup shortcut must not be taken.
    manifest = manifests.generated(9, recordings=20, with_samples=True)
    manifest["no_seizure"][0]["n_pos"] = 100
    parsed = parse_manifest(io.BytesIO(json.dumps(manifest).encode()))
    run_write(factory, partial(store_parsed, dataset_name="odd", parsed=parsed))
    answer = client.get("/api/v1/datasets/odd/histogram?bins=10").json()
    zero, counts = oracle.expected_histogram(manifest, set(), {}, 10)
    assert answer["zero"] == zero
    assert [b["count"] for b in answer["bins"]] == counts
    only_background = client.get("/api/v1/datasets/odd/histogram?category=no_seizure").json()
    assert only_background["zero"] == len(manifest["no_seizure"]) - 1
    assert sum(b["count"] for b in only_background["bins"]) == 1


# Names a spreadsheet would take for formulas (=, +, -, @), one with quotes and a comma too.
LINK = '=HYPERLINK("evil.example","x")'
FORMULA_NAMES = {
    "partial_seizure": manifests.windows(
        ("=1+2_windows.npz", 0), ("plain_s001_t000_windows.npz", 0)
    ),
    "full_seizure": manifests.windows(("+1+2_s001_t000_windows.npz", 0)),
    "no_seizure": manifests.windows(
        ("=1+2_windows.npz", 1),
        ("-3_windows.npz", 0),
        ("-3_windows.npz", 1),
        ("@SUM(A1)_windows.npz", 0),
        (f"{LINK}_windows.npz", 0),
        ("plain_s001_t000_windows.npz", 1),
    ),
}
NINTH, TWO_NINTHS = repr(1 / 9), repr(2 / 9)


def test_csv_cells_that_a_spreadsheet_would_run_are_text(client: TestClient) -> None:
    """OWASP's CSV injection advice: a text cell starting with =, +, -, @, tab or CR gets a
    leading single quote; numeric columns stay numbers."""
    load(client, "f", FORMULA_NAMES, set())
    numbers = {
        "+1+2": ["0", "0", "1", "1", "1", "1.0", NINTH],
        "-3": ["2", "0", "0", "0", "2", "0.0", TWO_NINTHS],
        "=1+2": ["1", "1", "0", "1", "2", "0.5", TWO_NINTHS],
        "link": ["1", "0", "0", "0", "1", "0.0", NINTH],
        "@SUM(A1)": ["1", "0", "0", "0", "1", "0.0", NINTH],
        "plain": ["1", "1", "0", "1", "2", "0.5", TWO_NINTHS],
    }
    tail = ["", "", "", "1", "0"]
    expected = {
        "recording": [
            ["'+1+2_s001_t000_windows.npz", "'+1+2", "s001", "'+1+2_s001_t000_windows.npz", ""]
            + numbers["+1+2"],
            ["'-3_windows.npz", "'-3", "", "'-3_windows.npz", ""] + numbers["-3"],
            ["'=1+2_windows.npz", "'=1+2", "", "'=1+2_windows.npz", ""] + numbers["=1+2"],
            [f"'{LINK}_windows.npz", f"'{LINK}", "", f"'{LINK}_windows.npz", ""] + numbers["link"],
            ["'@SUM(A1)_windows.npz", "'@SUM(A1)", "", "'@SUM(A1)_windows.npz", ""]
            + numbers["@SUM(A1)"],
            ["plain_s001_t000_windows.npz", "plain", "s001", "plain_s001_t000_windows.npz", ""]
            + numbers["plain"],
        ],
        "session": [
            ["'+1+2_s001", "'+1+2", "s001", "", ""] + numbers["+1+2"],
            ["'-3", "'-3", "", "", ""] + numbers["-3"],
            ["'=1+2", "'=1+2", "", "", ""] + numbers["=1+2"],
            [f"'{LINK}", f"'{LINK}", "", "", ""] + numbers["link"],
            ["'@SUM(A1)", "'@SUM(A1)", "", "", ""] + numbers["@SUM(A1)"],
            ["plain_s001", "plain", "s001", "", ""] + numbers["plain"],
        ],
    }
    for by, rows in expected.items():
        for method in ("GET", "POST"):
            if method == "GET":
                response = client.get(f"/api/v1/datasets/f/breakdown?by={by}&format=csv")
            else:
                response = client.post("/api/v1/datasets/f/breakdown?format=csv", json={"by": by})
            assert response.status_code == 200, response.text
            got = list(csv.reader(io.StringIO(response.text)))
            assert got[0][:5] == ["key", "patient", "session", "recording", "category"]
            assert got[1:] == [row + tail for row in rows], (by, method)
    # The JSON answer keeps the names as they are.
    keys = [
        g["key"] for g in client.get("/api/v1/datasets/f/breakdown?by=patient").json()["groups"]
    ]
    assert keys == ["+1+2", "-3", "=1+2", LINK, "@SUM(A1)", "plain"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@A1", "'@A1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
        ("'quoted", "'quoted"),
    ],
)
def test_text_cells_are_neutralised_by_their_first_character(value: str | None, cell: str) -> None:
    assert text_cell(value) == cell
