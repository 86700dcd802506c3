"""Stats answers equal a brute-force count over the same manifest, on SQLite and Postgres."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import manifests, oracle
from tests.support.uploads import load

STATS_FIELDS = (
    "counts",
    "samples",
    "seizure_ratio",
    "sample_ratio",
    "pos_weight",
    "recordings",
    "missing_windows",
    "missing_recordings",
)


def assert_matches(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    for field in STATS_FIELDS:
        assert answer[field] == expected[field], (field, answer[field], expected[field])


def test_small_manifest_hand_checked(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/stats").json()
    assert answer["counts"] == {
        "no_seizure": 7,
        "partial_seizure": 3,
        "full_seizure": 2,
        "seizure": 5,
        "total": 12,
    }
    assert answer["seizure_ratio"] == 5 / 12
    assert answer["pos_weight"] == (7 / 5) ** 0.5
    assert answer["recordings"] == 3
    assert answer["samples"] == {"positive": None, "total": None}
    assert answer["sample_ratio"] is None
    assert answer["warnings"] == []
    assert answer["content_hash"].startswith("sha256:")

    patient_b = client.get("/api/v1/datasets/small/stats?patient=bbbbbbbb").json()
    assert patient_b["counts"]["total"] == 3
    assert patient_b["seizure_ratio"] == 1 / 3
    assert patient_b["pos_weight"] == 2**0.5


def test_missing_recordings_are_excluded_and_counted(client: TestClient) -> None:
    missing = {"aaaaaaaa_s002_t000_windows.npz"}
    load(client, "small", manifests.SMALL, missing)
    answer = client.get("/api/v1/datasets/small/stats").json()
    assert answer["counts"]["total"] == 8
    assert answer["counts"]["partial_seizure"] == 2
    assert answer["missing_windows"] == 4
    assert answer["missing_recordings"] == 1
    assert answer["recordings"] == 2
    assert any(w.startswith("stale_manifest") for w in answer["warnings"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_filters_match_brute_force(client: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    manifest = manifests.generated(seed, recordings=50, with_samples=seed % 2 == 1)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 5))
    load(client, "gen", manifest, missing)
    patients = sorted({oracle.names_of(n)[1] for n in names})
    sessions = sorted({s for n in names if (s := oracle.names_of(n)[2])})
    stems = [oracle.names_of(n)[0] for n in names]

    def pick(pool: list[str], k: int) -> list[str]:
        return rng.sample(pool, min(k, len(pool)))

    for _ in range(25):
        filters: dict[str, list[str]] = {}
        if rng.random() < 0.5:
            filters["patient"] = [*pick(patients, rng.randint(1, 4)), "nobody"]
        if rng.random() < 0.3:
            filters["exclude_patient"] = pick(patients, rng.randint(1, 3))
        if rng.random() < 0.3:
            filters["session"] = pick(sessions, 2)
        if rng.random() < 0.3:
            filters["recording"] = pick(names, 6) + pick(stems, 6)
        if rng.random() < 0.3:
            filters["category"] = pick(
                ["partial_seizure", "full_seizure", "no_seizure", "seizure"], 2
            )
        weighting = rng.choice(["sqrt", "linear", "effective", "none"])
        basis = "sample" if seed % 2 == 1 and rng.random() < 0.5 else "window"
        params: list[tuple[str, str]] = [
            (k, v) for k, values in filters.items() for v in values
        ] + [("weighting", weighting), ("basis", basis), ("beta", "0.999")]
        answer = client.get("/api/v1/datasets/gen/stats", params=params).json()
        expected = oracle.expected_stats(
            manifest, missing, filters, weighting=weighting, basis=basis, beta=0.999
        )
        assert_matches(answer, expected)


def test_every_filter_combined_get_and_post_agree(client: TestClient) -> None:
    manifest = manifests.generated(11, recordings=60)
    names = manifests.recordings_of(manifest)
    missing = set(names[::7])
    load(client, "gen", manifest, missing)
    tusz = [n for n in names if oracle.names_of(n)[2]]
    patient_of = {n: oracle.names_of(n)[1] for n in names}
    chosen = tusz[:12]
    filters = {
        "patient": sorted({patient_of[n] for n in chosen}),
        "exclude_patient": [patient_of[chosen[0]]],
        "session": sorted({oracle.names_of(n)[2] or "" for n in chosen[:6]}),
        "recording": chosen[1:10],
        "category": ["seizure", "no_seizure"],
    }
    expected = oracle.expected_stats(manifest, missing, filters)
    assert expected["counts"]["total"] > 0
    by_get = client.get(
        "/api/v1/datasets/gen/stats", params={k: ",".join(v) for k, v in filters.items()}
    ).json()
    by_post = client.post("/api/v1/datasets/gen/stats", json=filters).json()
    assert_matches(by_get, expected)
    assert_matches(by_post, expected)


def test_qualified_session_filter(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/stats?session=aaaaaaaa_s001").json()
    assert answer["counts"]["total"] == 5
    both = client.get("/api/v1/datasets/small/stats?session=s001").json()
    assert both["counts"]["total"] == 8


def test_thousands_of_recordings_in_a_post_body(client: TestClient) -> None:
    manifest = manifests.generated(5, recordings=30, odd_names=False)
    load(client, "gen", manifest, set())
    names = manifests.recordings_of(manifest)
    wanted = names[:10] + [f"absent_{i}_windows.npz" for i in range(5000)]
    answer = client.post("/api/v1/datasets/gen/stats", json={"recording": wanted}).json()
    assert_matches(answer, oracle.expected_stats(manifest, set(), {"recording": wanted}))


def test_empty_subset(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/stats?patient=nobody").json()
    assert answer["counts"]["total"] == 0
    assert answer["seizure_ratio"] == 0.0
    assert answer["pos_weight"] == 1.0
    assert answer["recordings"] == 0
    # The value names no patient of the snapshot, which is said first: it explains the rest.
    assert [w.split(":")[0] for w in answer["warnings"]] == ["unmatched_filter", "empty_subset"]


def test_ratio_at_or_above_one_half_gives_weight_one(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/stats?category=seizure").json()
    assert answer["seizure_ratio"] == 1.0
    assert answer["pos_weight"] == 1.0
    linear = client.get("/api/v1/datasets/small/stats?category=seizure&weighting=linear").json()
    assert linear["pos_weight"] == 1.0
    # aaaaaaaa_s001_t000 alone: 3 seizure of 5 windows, p = 0.6 >= 0.5
    one = client.get("/api/v1/datasets/small/stats?recording=aaaaaaaa_s001_t000").json()
    assert one["seizure_ratio"] == 0.6
    assert one["pos_weight"] == 1.0
    assert (
        client.get(
            "/api/v1/datasets/small/stats?recording=aaaaaaaa_s001_t000&weighting=linear"
        ).json()["pos_weight"]
        == (1 - 0.6) / 0.6
    )


def test_no_seizures_gives_ratio_zero_and_a_warning(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    answer = client.get("/api/v1/datasets/small/stats?category=no_seizure").json()
    assert answer["seizure_ratio"] == 0.0
    assert answer["pos_weight"] == 1.0
    assert [w.split(":")[0] for w in answer["warnings"]] == ["low_seizure_ratio"]


def test_low_ratio_warning_threshold(client: TestClient) -> None:
    background = [{"cache_file": "x_windows.npz", "window_idx": i} for i in range(1, 1000)]
    manifest = {
        "partial_seizure": [{"cache_file": "x_windows.npz", "window_idx": 0}],
        "full_seizure": [],
        "no_seizure": background,
    }
    load(client, "rare", manifest, set())
    answer = client.get("/api/v1/datasets/rare/stats").json()
    assert answer["seizure_ratio"] == 1 / 1000
    assert answer["warnings"] == [], "exactly 0.001 is not below 0.001"
    answer = client.get("/api/v1/datasets/rare/stats?weighting=effective").json()
    assert answer["pos_weight"] == oracle.effective_weight(1, 999, 0.9999)

    manifest["no_seizure"].append({"cache_file": "x_windows.npz", "window_idx": 1000})
    load(client, "rarer", manifest, set())
    answer = client.get("/api/v1/datasets/rarer/stats").json()
    assert answer["seizure_ratio"] == 1 / 1001
    assert [w.split(":")[0] for w in answer["warnings"]] == ["low_seizure_ratio"]


def test_pinned_snapshot_keeps_answering_after_a_new_import(client: TestClient) -> None:
    first = load(client, "ds", manifests.SMALL, set())
    second_manifest = manifests.generated(3)
    second = load(client, "ds", second_manifest, set())
    assert second != first
    current = client.get("/api/v1/datasets/ds/stats").json()
    pinned = client.get(f"/api/v1/datasets/ds/stats?snapshot={first}").json()
    assert current["snapshot"] == second
    assert_matches(current, oracle.expected_stats(second_manifest, set()))
    assert pinned["snapshot"] == first
    assert_matches(pinned, oracle.expected_stats(manifests.SMALL, set()))


def test_sample_basis(client: TestClient) -> None:
    manifest = manifests.generated(8, with_samples=True)
    load(client, "s", manifest, set())
    for weighting, filters in itertools.product(
        ["sqrt", "linear", "effective"], [{}, {"category": ["partial_seizure"]}]
    ):
        params = {"basis": "sample", "weighting": weighting} | {k: v[0] for k, v in filters.items()}
        answer = client.get("/api/v1/datasets/s/stats", params=params).json()
        assert_matches(
            answer,
            oracle.expected_stats(manifest, set(), filters, weighting=weighting, basis="sample"),
        )


@pytest.mark.parametrize(
    ("question", "needed_by", "way_out"),
    [
        ("stats?basis=sample", "basis=sample", "or use basis=window"),
        ("histogram", "the histogram (of each window's seizure fraction)", "to get them"),
    ],
)
def test_questions_that_need_sample_counts_say_how_to_get_them(
    client: TestClient, question: str, needed_by: str, way_out: str
) -> None:
    snapshot = load(client, "small", manifests.SMALL, set())
    response = client.get(f"/api/v1/datasets/small/{question}")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"{needed_by} needs per-window sample counts, but snapshot {snapshot} of dataset 'small' "
        "was imported from a manifest without them (no n_pos and n_samples); scan the cache "
        f"(seizure-stats scan) {way_out}"
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("weighting=cubic", "weighting"),
        ("basis=patient", "basis"),
        ("category=seizures", "category"),
        ("beta=1", "beta"),
        ("beta=-0.5", "beta"),
        ("beta=nan", "beta"),
        ("snapshot=0", "snapshot"),
        ("snapshot=abc", "snapshot"),
        ("patients=x", "patients"),
        ("weighting=sqrt&limit=3", "limit"),
    ],
)
def test_invalid_parameters_are_named(client: TestClient, query: str, named: str) -> None:
    load(client, "small", manifests.SMALL, set())
    response = client.get(f"/api/v1/datasets/small/stats?{query}")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert named in body["detail"]


def test_unknown_dataset_and_snapshot(client: TestClient) -> None:
    assert client.get("/api/v1/datasets/nope/stats").status_code == 404
    load(client, "small", manifests.SMALL, set())
    response = client.get("/api/v1/datasets/small/stats?snapshot=999999")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_sql_in_filter_values_matches_nothing(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    for value in ["' OR 1=1 --", "aaaaaaaa' OR '1'='1", '"; DROP TABLE windows; --', "%", "_"]:
        answer = client.get("/api/v1/datasets/small/stats", params={"patient": value}).json()
        assert answer["counts"]["total"] == 0, value
    assert client.get("/api/v1/datasets/small/stats").json()["counts"]["total"] == 12


def test_ids_beyond_32_bits_are_refused_not_overflowed(client: TestClient) -> None:
    """Fuzzing found a 500: a snapshot id too large for the database's integer column."""
    load(client, "small", manifests.SMALL, set())
    huge = str(2**63 + 5)
    for response in (
        client.get(f"/api/v1/datasets/small/stats?snapshot={huge}"),
        client.post("/api/v1/datasets/small/stats", json={"snapshot": int(huge)}),
        client.get(f"/api/v1/datasets/small/balanced?snapshot={huge}"),
        client.post("/api/v1/datasets/small/balanced/index", json={"snapshot": 2**31}),
        client.get(f"/api/v1/datasets/small/snapshots/{huge}"),
        client.get("/api/v1/datasets/small/snapshots/0"),
    ):
        assert response.status_code == 422, response.text
        assert "snapshot" in response.json()["detail"]
    largest = client.get(f"/api/v1/datasets/small/stats?snapshot={2**31 - 1}")
    assert largest.status_code == 404


# -- an explicitly empty filter value is refused, never read as "no filter" -----------------

FILTER_ROUTES = ("stats", "balanced", "balanced/index", "breakdown", "histogram")
HINT = "leave the parameter out (or send []) for no filter"
# (query value, what the detail quotes as the empty value, what it says it got)
EMPTY_IN_QUERY = [
    ("", "''", "\"['']\""),
    (",", "','", "\"[',']\""),
    ("%20", "' '", "\"[' ']\""),
    ("a,,b", "'a,,b'", "\"['a,,b']\""),
    ("a,", "'a,'", "\"['a,']\""),
    ("%20,b", "' ,b'", "\"[' ,b']\""),
]
EMPTY_IN_BODY: list[tuple[Any, str, str]] = [
    ([""], "''", "\"['']\""),
    ("", "''", "''"),
    (["a", " "], "' '", "\"['a', ' ']\""),
    (["a,,b"], "'a,,b'", "\"['a,,b']\""),
    ([","], "','", "\"[',']\""),
]


def empty_value_detail(field: str, shown: str, got: str) -> str:
    return f"{field}: empty value in {shown}: {HINT} (got {got})"


@pytest.mark.parametrize(
    "field", ["patient", "exclude_patient", "session", "recording", "category"]
)
def test_an_empty_filter_value_is_refused_by_name(client: TestClient, field: str) -> None:
    """`patient=$EMPTY` in a job script answered for the whole dataset; now it is a 422."""
    load(client, "small", manifests.SMALL, set())
    for route in FILTER_ROUTES:
        path = f"/api/v1/datasets/small/{route}"
        for value, shown, got in EMPTY_IN_QUERY:
            response = client.get(f"{path}?{field}={value}")
            assert response.status_code == 422, (route, value, response.text)
            assert response.json() == {
                "error": "invalid_request",
                "detail": empty_value_detail(field, shown, got),
            }, (route, value)
        for body, shown, got in EMPTY_IN_BODY:
            response = client.post(path, json={field: body})
            assert response.status_code == 422, (route, body, response.text)
            assert response.json() == {
                "error": "invalid_request",
                "detail": empty_value_detail(field, shown, got),
            }, (route, body)


def test_no_filter_and_an_empty_list_still_mean_everything(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    for route in ("stats", "balanced", "breakdown"):
        path = f"/api/v1/datasets/small/{route}"
        everything = client.get(path).json()
        empty_lists = {field: [] for field in ("patient", "exclude_patient", "session")}
        assert client.post(path, json=empty_lists | {"category": []}).json() == everything
    assert client.get("/api/v1/datasets/small/stats").json()["counts"]["total"] == 12
    # Spaces around a value are not part of it.
    spaced = client.get("/api/v1/datasets/small/stats?patient=%20bbbbbbbb%20,%20aaaaaaaa")
    assert spaced.json()["counts"]["total"] == 12
