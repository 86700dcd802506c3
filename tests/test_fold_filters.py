"""The fold filters (fold, exclude_fold, fold_seed, fold_stratify) on every question, against
brute force over the manifest's windows with the folds of scikit-learn's StratifiedGroupKFold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from app.dashboard.snippets import curl_snippet, python_snippet
from seizure_stats.client import APIError, SeizureStatsClient
from seizure_stats.schemas.questions import StatsQuery
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.uploads import load
from tests.test_folds import manifest_folds

Manifest = dict[str, list[dict[str, Any]]]
Params = list[tuple[str, str]]
# Other filters a fold combines with (AND).
OTHERS: list[dict[str, list[str]]] = [
    {},
    {"category": ["seizure"]},
    {"session": ["s001", "s003", "s005"]},
]


def patient_of(cache_file: str) -> str:
    return oracle.names_of(cache_file)[1]


def restricted(manifest: Manifest, patients: set[str], *, keep: bool) -> Manifest:
    """The manifest's windows of these patients (keep) or of all the others, in order."""
    return {
        category: [e for e in entries if (patient_of(e["cache_file"]) in patients) is keep]
        for category, entries in manifest.items()
    }


def pairs(filters: dict[str, list[str]], **settings: Any) -> Params:
    found = [(name, value) for name, values in filters.items() for value in values]
    return found + [(name, str(value)) for name, value in settings.items()]


@pytest.fixture
def loaded(client: TestClient) -> tuple[Manifest, set[str]]:
    manifest = manifests.generated(11, recordings=160, with_samples=True)
    names = manifests.recordings_of(manifest)
    missing = set(names[::9])
    load(client, "cv", manifest, missing)
    return manifest, missing


def stats_of(client: TestClient, params: Params) -> dict[str, Any]:
    response = client.get("/api/v1/datasets/cv/stats", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def assert_stats(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    for field in ("counts", "samples", "seizure_ratio", "pos_weight", "recordings"):
        assert answer[field] == expected[field], field
    assert answer["missing_windows"] == expected["missing_windows"]
    assert answer["missing_recordings"] == expected["missing_recordings"]


@pytest.mark.parametrize(("k", "seed", "stratify"), [(5, 0, "category"), (3, 7, "seizure")])
def test_every_question_of_a_fold_equals_brute_force(
    client: TestClient, loaded: tuple[Manifest, set[str]], k: int, seed: int, stratify: str
) -> None:
    manifest, missing = loaded
    folds = manifest_folds(manifest, k, seed, stratify)
    some_patient = sorted(folds[0])[0]
    others = [*OTHERS, {"exclude_patient": [some_patient], "category": ["no_seizure"]}]
    settings = {"fold_seed": seed, "fold_stratify": stratify}
    for index, patients in enumerate(folds):
        for name, keep in (("fold", True), ("exclude_fold", False)):
            part = restricted(manifest, patients, keep=keep)
            for filters in others:
                params = pairs(filters, **{name: f"{index}/{k}"}, **settings)
                expected = oracle.expected_stats(part, missing, filters)
                assert_stats(stats_of(client, params), expected)
            filters = others[-1]
            params = pairs(filters, **{name: f"{index}/{k}"}, **settings)
            breakdown = client.get(
                "/api/v1/datasets/cv/breakdown", params=[*params, ("limit", "1000")]
            ).json()
            want = oracle.expected_breakdown(part, missing, filters, "patient")
            assert [g["key"] for g in breakdown["groups"]] == [w["key"] for w in want]
            for got, wanted in zip(breakdown["groups"], want, strict=True):
                for field in ("counts", "share", "recordings", "missing_windows"):
                    assert got[field] == wanted[field], (got["key"], field)
            histogram = client.get("/api/v1/datasets/cv/histogram", params=params).json()
            zero, counts = oracle.expected_histogram(part, missing, filters, 20)
            assert (histogram["zero"], [b["count"] for b in histogram["bins"]]) == (zero, counts)


def test_a_fold_and_its_training_part_partition_the_dataset(
    client: TestClient, loaded: tuple[Manifest, set[str]]
) -> None:
    whole = stats_of(client, [])
    for k in (2, 4, 10):
        seen: set[str] = set()
        for index in range(k):
            test = stats_of(client, [("fold", f"{index}/{k}")])
            train = stats_of(client, [("exclude_fold", f"{index}/{k}")])
            for field in ("no_seizure", "partial_seizure", "full_seizure", "total"):
                assert test["counts"][field] + train["counts"][field] == whole["counts"][field]
            assert test["recordings"] + train["recordings"] == whole["recordings"]
            assert test["missing_windows"] + train["missing_windows"] == whole["missing_windows"]
            groups = client.get(
                "/api/v1/datasets/cv/breakdown",
                params={"fold": f"{index}/{k}", "limit": 1000},
            ).json()["groups"]
            keys = {g["key"] for g in groups}
            assert not keys & seen
            seen |= keys
        everyone = client.get("/api/v1/datasets/cv/breakdown", params={"limit": 1000}).json()
        assert seen == {g["key"] for g in everyone["groups"]}


def test_several_values_are_the_union_of_their_folds(
    client: TestClient, loaded: tuple[Manifest, set[str]]
) -> None:
    manifest, missing = loaded
    folds = manifest_folds(manifest, 5, 0, "category")
    union = folds[1] | folds[3]
    for name, keep in (("fold", True), ("exclude_fold", False)):
        expected = oracle.expected_stats(restricted(manifest, union, keep=keep), missing)
        assert_stats(stats_of(client, [(name, "3/5"), (name, "1/5")]), expected)
        assert_stats(stats_of(client, [(name, "1/5,3/5")]), expected)
        repeated = client.post("/api/v1/datasets/cv/stats", json={name: ["1/5", "3/5"] * 5000})
        assert_stats(repeated.json(), expected)
    # fold and exclude_fold hold together: fold 1 of a 5-way split minus fold 0 of a 2-way one.
    halves = manifest_folds(manifest, 2, 0, "category")
    both = restricted(restricted(manifest, folds[1], keep=True), halves[0], keep=False)
    answer = stats_of(client, [("fold", "1/5"), ("exclude_fold", "0/2")])
    assert_stats(answer, oracle.expected_stats(both, missing))


def test_balanced_of_a_training_part_is_that_of_its_patients_left_out(
    client: TestClient, loaded: tuple[Manifest, set[str]]
) -> None:
    manifest, missing = loaded
    patients = manifest_folds(manifest, 4, 9, "seizure")[2]
    settings: Params = [("exclude_fold", "2/4"), ("fold_seed", "9"), ("fold_stratify", "seizure")]
    by_name: Params = [("exclude_patient", p) for p in sorted(patients)]
    options: Params = [("full_ratio", "0.5"), ("seed", "3")]
    for path in ("balanced", "balanced/index"):
        url = f"/api/v1/datasets/cv/{path}"
        folded = client.get(url, params=[*settings, *options])
        named = client.get(url, params=[*by_name, *options])
        assert folded.status_code == named.status_code == 200, folded.text
        assert folded.text == named.text
    counts, index = oracle.expected_balanced(
        restricted(manifest, patients, keep=False), missing, full_ratio=0.5, seed=3
    )
    answer = client.post(
        "/api/v1/datasets/cv/balanced",
        json={"exclude_fold": ["2/4"], "fold_seed": 9, "fold_stratify": "seizure", "seed": 3}
        | {"full_ratio": 0.5},
    ).json()
    assert {c: answer["counts"][c] for c in oracle.CATEGORIES} == counts
    lines = client.get("/api/v1/datasets/cv/balanced/index", params=[*settings, *options])
    assert [(e["cache_file"], e["window_idx"]) for e in map(json.loads, lines.iter_lines())] == (
        index
    )


def test_get_and_post_agree_and_share_a_normalised_key(
    client: TestClient, loaded: tuple[Manifest, set[str]]
) -> None:
    body = {"fold": "0/5", "fold_seed": 4, "category": ["seizure"]}
    posted = client.post("/api/v1/datasets/cv/stats", json=body)
    query = {"fold": "0/5", "fold_seed": "4", "category": "seizure"}
    got = client.get("/api/v1/datasets/cv/stats", params=query)
    assert posted.status_code == got.status_code == 200, posted.text
    assert posted.json() == got.json()
    assert posted.headers["etag"] == got.headers["etag"]
    # The defaults spelled out are the same question; without folds the settings shape nothing.
    plain = client.get("/api/v1/datasets/cv/stats", params={"fold": "0/5"})
    spelled = client.get(
        "/api/v1/datasets/cv/stats",
        params={"fold": "00/05", "fold_seed": "0", "fold_stratify": "category"},
    )
    assert plain.headers["etag"] == spelled.headers["etag"]
    assert plain.json() == spelled.json()
    whole = client.get("/api/v1/datasets/cv/stats")
    seeded = client.get("/api/v1/datasets/cv/stats", params={"fold_seed": "5"})
    assert whole.headers["etag"] == seeded.headers["etag"]
    other_seed = client.get("/api/v1/datasets/cv/stats", params={"fold": "0/5", "fold_seed": "5"})
    assert other_seed.headers["etag"] != plain.headers["etag"]


REFUSED = [
    ({"fold": "1-5"}, "fold.0: must be i/K, test fold i (0-based) of K folds, e.g. 0/5; got '1-5'"),
    ({"exclude_fold": "a/b"}, "exclude_fold.0: must be i/K, test fold i (0-based) of K folds"),
    ({"fold": "0/1"}, "fold.0: k must be at least 2 in '0/1'"),
    ({"exclude_fold": "0/21"}, "exclude_fold.0: k must be at most 20 in '0/21'"),
    ({"exclude_fold": "5/5"}, "exclude_fold.0: fold 5 is out of range for k=5: 0 to 4"),
    ({"fold": "0/5,1/4"}, "fold: every value of one fold filter must have the same K (one split)"),
    ({"fold": "0/3"}, "fold=0/3: k=3 is greater than the number of patients (2)"),
    ({"exclude_fold": "1/4"}, "exclude_fold=1/4: k=4 is greater than the number of patients (2)"),
    ({"fold": "0/8"}, "fold=0/8: k=8 is greater than the number of windows of every class"),
    ({"fold": "0/2", "fold_seed": "-1"}, "fold_seed: Input should be greater than or equal to 0"),
    ({"fold_seed": str(2**32)}, "fold_seed: Input should be less than or equal to 4294967295"),
    ({"fold_seed": "x"}, "fold_seed: Input should be a valid integer"),
    ({"fold_stratify": "patient"}, "fold_stratify: Input should be 'category' or 'seizure'"),
]


@pytest.mark.parametrize(("params", "detail"), REFUSED)
def test_bad_fold_filters_are_a_422_naming_them(
    client: TestClient, params: dict[str, str], detail: str
) -> None:
    load(client, "small", manifests.SMALL)
    # Found only with the snapshot at hand: the histogram first refuses SMALL (no sample counts).
    needs_snapshot = "=" in detail.split(":")[0]
    for path in ("stats", "balanced", "balanced/index", "breakdown", "histogram"):
        url = f"/api/v1/datasets/small/{path}"
        for response in (client.get(url, params=params), client.post(url, json=params)):
            assert response.status_code == 422, (path, response.text)
            assert response.json()["error"] == "invalid_request"
            if not (needs_snapshot and path == "histogram"):
                assert response.json()["detail"].startswith(detail), (path, response.json())
    refused = client.post("/api/v1/datasets/small/stats", json={"fold": "0/2", "fold_seed": True})
    assert refused.json()["detail"].startswith("fold_seed: must be a number, not a boolean")


def test_a_class_fewer_than_k_is_warned_of_on_answers_with_folds(client: TestClient) -> None:
    entry = {"window_idx": 0}
    manifest: Manifest = {
        "partial_seizure": [entry | {"cache_file": f"p{i}_s001_t000.npz"} for i in range(4)],
        "full_seizure": [entry | {"cache_file": "p0_s001_t001.npz"}],
        "no_seizure": [entry | {"cache_file": f"p{i}_s001_t002.npz"} for i in range(4)],
    }
    load(client, "sparse", manifest)
    warning = (
        "fold_sparse_class: the least populated class has only 1 window, fewer than k=3: some "
        "folds have none of it"
    )
    for path in ("stats", "balanced", "breakdown"):
        url = f"/api/v1/datasets/sparse/{path}"
        warned = client.get(url, params={"fold": "0/3"}).json()["warnings"]
        assert warned.count(warning) == 1, warned
        both = client.get(url, params={"exclude_fold": ["1/3"], "fold": "0/3"}).json()
        assert both["warnings"].count(warning) == 1
        assert warning not in client.get(url).json()["warnings"]
        assert warning not in client.get(url, params={"fold": "0/2"}).json()["warnings"]
        # Stratified by seizure or not, no class is that small.
        seizure = client.get(url, params={"fold": "0/3", "fold_stratify": "seizure"}).json()
        assert warning not in seizure["warnings"]


def test_the_cli_takes_the_fold_options(
    client: TestClient, loaded: tuple[Manifest, set[str]], database_url: str, tmp_path: Path
) -> None:
    manifest, missing = loaded
    runner = CliRunner(env={"DATABASE_URL": database_url, "SEIZURE_STATS_URL": ""})
    args = ["stats", "--dataset", "cv", "--fold", "1/4", "--fold-seed", "2", "--json"]
    result = runner.invoke(main, [*args, "--fold-stratify", "seizure", "--category", "seizure"])
    assert result.exit_code == 0, result.output
    part = restricted(manifest, manifest_folds(manifest, 4, 2, "seizure")[1], keep=True)
    assert_stats(json.loads(result.output), oracle.expected_stats(part, missing, OTHERS[1]))
    index = tmp_path / "index.jsonl"
    args = ["balanced", "--dataset", "cv", "--exclude-fold", "1/4", "--index", str(index)]
    result = runner.invoke(main, [*args, "--fold-seed", "2", "--fold-stratify", "seizure"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [(e["cache_file"], e["window_idx"]) for e in lines] == oracle.expected_balanced(
        restricted(manifest, manifest_folds(manifest, 4, 2, "seizure")[1], keep=False), missing
    )[1]
    refused = runner.invoke(main, ["stats", "--dataset", "cv", "--fold", "4/4"])
    assert refused.exit_code != 0
    assert "fold 4 is out of range for k=4: 0 to 3" in refused.output
    refused = runner.invoke(main, ["stats", "--dataset", "cv", "--fold-stratify", "x"])
    assert refused.exit_code == 2
    assert "'x' is not one of 'category', 'seizure'" in refused.output


def test_the_dashboard_form_keeps_the_fold_filters(
    client: TestClient, loaded: tuple[Manifest, set[str]]
) -> None:
    manifest, missing = loaded
    params = {"fold": "2/5", "fold_seed": "6", "fold_stratify": "seizure"}
    page = client.get("/datasets/cv", params=params)
    assert page.status_code == 200, page.text
    assert 'name="fold" value="2/5"' in page.text
    assert 'name="fold_seed" value="6"' in page.text
    assert "<option selected>seizure</option>" in page.text
    part = restricted(manifest, manifest_folds(manifest, 5, 6, "seizure")[2], keep=True)
    total = oracle.expected_stats(part, missing)["counts"]["total"]
    assert f'id="subset-total" data-value="{total}"' in page.text
    assert "the patients of these test folds (<code>i/K</code>): 2/5" in page.text
    refused = client.get("/datasets/cv", params={"fold": "0/21"})
    assert "fold.0: k must be at most 20 in " in refused.text
    # The form sends its select whatever it holds: without a fold it asks nothing more.
    plain = client.get("/datasets/cv", params={"fold_stratify": "category", "fold_seed": ""})
    assert '<strong id="subset-description">all windows</strong>' in plain.text
    assert "folds stratified by" not in plain.text
    query = StatsQuery(fold=["2/5"], fold_seed=6, fold_stratify="seizure")
    assert "fold=['2/5'], fold_seed=6, fold_stratify='seizure'" in python_snippet("", "cv", query)
    assert "--data-urlencode fold_seed=6" in curl_snippet("", "cv", query)


@pytest.mark.e2e
def test_the_client_takes_the_fold_keywords(live_server: str, database_url: str) -> None:
    manifest = manifests.generated(3, recordings=80)
    token = make_token(database_url, "cv-writer", "write")
    load(live_server, "cv", manifest, token=token)
    folds = manifest_folds(manifest, 3, 11, "category")
    with SeizureStatsClient(live_server, token=token, retries=0) as client:
        stats = client.stats("cv", fold="2/3", fold_seed=11, category=["no_seizure"])
        part = restricted(manifest, folds[2], keep=True)
        assert_stats(
            stats.model_dump(), oracle.expected_stats(part, set(), {"category": ["no_seizure"]})
        )
        # Past the URL's limit the filter travels in a POST body, the settings with it.
        many = [f"nobody{i}" for i in range(200)]
        train = client.balanced(
            "cv",
            exclude_fold=["2/3"],
            fold_seed=11,
            fold_stratify="category",
            patient=None,
            exclude_patient=many,
            strict=False,  # they name nobody on purpose
        )
        counts, index = oracle.expected_balanced(restricted(manifest, folds[2], keep=False), set())
        assert {c: getattr(train.counts, c) for c in oracle.CATEGORIES} == counts
        entries = client.balanced_index("cv", exclude_fold="2/3", fold_seed=11)
        assert [(e.cache_file, e.window_idx) for e in entries] == index
        with pytest.raises(APIError) as refused:
            client.stats("cv", fold="3/3")
        assert refused.value.status_code == 422
        assert refused.value.detail.startswith("fold.0: fold 3 is out of range for k=3: 0 to 2")
