"""`exclude_recording` leaves out recordings found unusable in review: exact numbers against the
brute-force oracle, on every surface (HTTP GET and POST, the CLI, the client, the dashboard)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from seizure_stats.client import SeizureStatsClient
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.uploads import load
from tests.test_balanced import check as check_balanced
from tests.test_breakdown import params_of
from tests.test_dashboard import parse
from tests.test_stats import assert_matches

Manifest = dict[str, Any]


def reviewed(manifest: Manifest) -> tuple[list[str], set[str], dict[str, list[str]]]:
    """The recordings, the missing ones, and the unusable ones as a reviewer names them: cache
    files, stems, and a name the dataset does not have."""
    names = manifests.recordings_of(manifest)
    stems = [oracle.names_of(name)[0] for name in names]
    unusable = [*names[1:6], *stems[10:13], "never_reviewed_windows.npz"]
    return names, set(names[::9]), {"exclude_recording": unusable}


def combined(names: list[str], filters: dict[str, list[str]]) -> dict[str, list[str]]:
    """With other filters: a recording both chosen and excluded is left out."""
    return filters | {"recording": names[:20], "category": ["seizure", "no_seizure"]}


@pytest.fixture
def dataset(client: TestClient) -> tuple[Manifest, list[str], set[str], dict[str, list[str]]]:
    manifest = manifests.generated(23, recordings=50, with_samples=True)
    names, missing, filters = reviewed(manifest)
    load(client, "gen", manifest, missing)
    return manifest, names, missing, filters


def test_stats_get_and_post(client: TestClient, dataset: Any) -> None:
    manifest, names, missing, filters = dataset
    everything = oracle.expected_stats(manifest, missing)
    for asked in (filters, combined(names, filters)):
        expected = oracle.expected_stats(manifest, missing, asked)
        assert 0 < expected["counts"]["total"] < everything["counts"]["total"]
        path = "/api/v1/datasets/gen/stats"
        assert_matches(client.get(path, params=params_of(asked)).json(), expected)
        commas = {name: ",".join(values) for name, values in asked.items()}
        assert_matches(client.get(path, params=commas).json(), expected)
        assert_matches(client.post(path, json=asked).json(), expected)
    alone = oracle.expected_stats(manifest, missing, filters)
    assert alone["recordings"] == everything["recordings"] - len(
        {name for name in names[1:6] + names[10:13] if name not in missing}
    )


def test_a_long_exclusion_list_on_both_dialects(client: TestClient, dataset: Any) -> None:
    manifest, names, missing, _ = dataset
    unusable = names[::2] + [f"unknown_{i}" for i in range(1000)]
    expected = oracle.expected_stats(manifest, missing, {"exclude_recording": unusable})
    answer = client.post("/api/v1/datasets/gen/stats", json={"exclude_recording": unusable})
    assert_matches(answer.json(), expected)


def test_balanced_and_its_index_get_and_post(client: TestClient, dataset: Any) -> None:
    manifest, names, missing, filters = dataset
    check_balanced(client, "gen", manifest, missing, filters, {"seed": 5})
    counts, index = oracle.expected_balanced(manifest, missing, filters, seed=5)
    body = filters | {"seed": 5}
    posted = client.post("/api/v1/datasets/gen/balanced", json=body).json()
    assert posted["counts"]["total"] == sum(counts.values())
    assert posted["counts"]["partial_seizure"] == counts["partial_seizure"]
    lines = client.post("/api/v1/datasets/gen/balanced/index", json=body).text.splitlines()
    assert [(e["cache_file"], e["window_idx"]) for e in map(json.loads, lines)] == index
    excluded = set(filters["exclude_recording"]) | {oracle.names_of(n)[0] for n in names[1:6]}
    assert not {name for name, _ in index if oracle.names_of(name)[0] in excluded}


def test_breakdown_get_and_post(client: TestClient, dataset: Any) -> None:
    manifest, _, missing, filters = dataset
    for by in ("recording", "patient"):
        expected = oracle.expected_breakdown(manifest, missing, filters, by)
        path = "/api/v1/datasets/gen/breakdown"
        by_get = client.get(path, params=params_of(filters, by=by, limit=1000)).json()
        by_post = client.post(path, json=filters | {"by": by, "limit": 1000}).json()
        for answer in (by_get, by_post):
            assert [g["key"] for g in answer["groups"]] == [e["key"] for e in expected]
            assert [g["counts"] for g in answer["groups"]] == [e["counts"] for e in expected]
    keys = {e["key"] for e in oracle.expected_breakdown(manifest, missing, filters, "recording")}
    assert not keys & set(filters["exclude_recording"])


def test_histogram_get_and_post(client: TestClient, dataset: Any) -> None:
    manifest, _, missing, filters = dataset
    zero, counts = oracle.expected_histogram(manifest, missing, filters, 10)
    path = "/api/v1/datasets/gen/histogram"
    for answer in (
        client.get(path, params=params_of(filters, bins=10)).json(),
        client.post(path, json=filters | {"bins": 10}).json(),
    ):
        assert (answer["zero"], [b["count"] for b in answer["bins"]]) == (zero, counts)


def test_a_misspelt_name_is_refused_and_the_filter_offered(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    response = client.get("/api/v1/datasets/small/stats?exclude_recordings=x")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("unknown query parameter 'exclude_recordings'; allowed: ")
    assert "exclude_recording," in detail


def test_the_dashboard_form(client: TestClient, dataset: Any) -> None:
    manifest, _, missing, filters = dataset
    expected = oracle.expected_stats(manifest, missing, filters)
    shown = ", ".join(filters["exclude_recording"])
    page = client.get("/datasets/gen", params={"exclude_recording": shown})
    assert page.status_code == 200, page.text
    values = parse(page.text)
    assert int(values.by_id["subset-total"]) == expected["counts"]["total"]
    assert int(values.by_id["subset-recordings"]) == expected["recordings"]
    assert f'name="exclude_recording" value="{shown}"' in page.text
    assert "leaving out these recordings (cache file name or stem): " in page.text


def test_the_cli(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SEIZURE_STATS_URL", raising=False)
    manifest = manifests.generated(23, recordings=50)
    _, _, filters = reviewed(manifest)
    cli = CliRunner()
    path = manifests.write(tmp_path / "m.json", manifest)
    assert cli.invoke(main, ["import", str(path), "--dataset", "g"]).exit_code == 0
    unusable = filters["exclude_recording"]
    options = ["--exclude-recording", unusable[0], "--exclude-recording", ",".join(unusable[1:])]
    # The list names a recording the dataset never had: asked for, not refused.
    options.append("--no-strict")
    result = cli.invoke(main, ["stats", "--dataset", "g", *options, "--json"])
    assert result.exit_code == 0, result.output
    assert_matches(json.loads(result.output), oracle.expected_stats(manifest, set(), filters))
    index = tmp_path / "index.jsonl"
    result = cli.invoke(main, ["balanced", "--dataset", "g", *options, "--index", str(index)])
    assert result.exit_code == 0, result.output
    _, expected = oracle.expected_balanced(manifest, set(), filters)
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [(e["cache_file"], e["window_idx"]) for e in lines] == expected


@pytest.mark.e2e
def test_the_client(live_server: str, database_url: str) -> None:
    token = make_token(database_url, "reviewer", "write")
    manifest = manifests.generated(23, recordings=50)
    _, _, filters = reviewed(manifest)
    with SeizureStatsClient(live_server, token=token, retries=0) as client:
        client.import_manifest("g", io.BytesIO(json.dumps(manifest).encode()))
        unusable = filters["exclude_recording"]
        # The list names a recording the dataset never had: asked for, not refused.
        short = client.stats("g", exclude_recording=unusable, strict=False).model_dump()
        assert_matches(short, oracle.expected_stats(manifest, set(), filters))
        # Past 100 values the filter travels in a POST body.
        long = [*unusable, *(f"unknown_{i}" for i in range(150))]
        posted = client.stats("g", exclude_recording=long, strict=False).model_dump()
        assert_matches(posted, oracle.expected_stats(manifest, set(), filters))
        _, expected = oracle.expected_balanced(manifest, set(), filters)
        index = client.balanced_index("g", exclude_recording=unusable, strict=False)
        assert [(e.cache_file, e.window_idx) for e in index] == expected
        kept = client.balanced("g", exclude_recording=long, strict=False).counts.total
        assert kept == len(expected)
