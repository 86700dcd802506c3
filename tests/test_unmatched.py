"""Filter values that name nothing are never silent: each question reports them (`unmatched`, an
`unmatched_filter` warning, or headers for a streamed answer), strict questions refuse them, and
the client and the CLI are strict by default.

Expectations come from the manifest through the brute-force oracle: a value is matched when the
oracle's own filter, given that value alone, selects a recording of the manifest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from app.demo import generate_recordings
from seizure_stats.client import (
    APIError,
    SeizureStatsClient,
    UnmatchedFilterError,
    UnmatchedFilterWarning,
)
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.uploads import load
from tests.test_stats import assert_matches

Manifest = dict[str, Any]
Filters = dict[str, list[str]]
NAME_FILTERS = ("patient", "exclude_patient", "session", "recording", "exclude_recording")
# What an exclusion's value is matched by: the recordings it would leave out.
SELECTED_BY = {"exclude_patient": "patient", "exclude_recording": "recording"}
JSON_KINDS = {
    "stats": {},
    "balanced": {"seed": 3},
    "breakdown": {"by": "recording", "limit": 1000},
    "histogram": {"bins": 5},
}


def oracle_unmatched(manifest: Manifest, filters: Filters) -> Filters:
    """Per filter, its values (sorted, once) that select no recording of the manifest."""
    names = manifests.recordings_of(manifest)
    found: Filters = {}
    for name in NAME_FILTERS:
        asked = filters.get(name)
        if not asked:
            continue
        selecting = SELECTED_BY.get(name, name)
        nothing = sorted(
            {
                value
                for value in asked
                if not any(
                    oracle.entry_matches(recording, "no_seizure", {selecting: [value]})
                    for recording in names
                )
            }
        )
        if nothing:
            found[name] = nothing
    return found


def warning_text(snapshot: int, name: str, values: list[str]) -> str:
    """The warning's text: at most 20 values written out."""
    listed = ", ".join(repr(value) for value in values[:20])
    if len(values) > 20:
        listed += f" and {len(values) - 20:,} more"
    return f"unmatched_filter: {name}: no recording of snapshot {snapshot} matches {listed}"


class Case:
    """A generated dataset with one patient wholly missing, and a list per name filter that
    mixes values it has with typos."""

    def __init__(self, manifest: Manifest, snapshot: int, missing: set[str]) -> None:
        self.manifest, self.snapshot, self.missing = manifest, snapshot, missing


def tusz(name: str) -> bool:
    return oracle.names_of(name)[2] is not None


def build_lists(manifest: Manifest) -> tuple[set[str], dict[str, Filters]]:
    names = manifests.recordings_of(manifest)
    partial = sorted({e["cache_file"] for e in manifest["partial_seizure"]})
    seizing = [n for n in partial if tusz(n)]
    chosen = seizing[0]
    stem, patient, session = oracle.names_of(chosen)
    assert session is not None
    patients = sorted({oracle.names_of(n)[1] for n in names})
    # The missing patient: one without partial windows of the chosen patient's, so balancing
    # around the chosen patient still works.
    gone = next(p for p in patients if p != patient)
    missing = {n for n in names if oracle.names_of(n)[1] == gone}
    other = next(n for n in names if n != chosen and n not in missing)
    lists: dict[str, Filters] = {
        "patient": {"patient": [patient, patient + "x", "zz_not_a_patient"]},
        "exclude_patient": {"exclude_patient": [gone, "p" + gone[1:] + "q", gone, "nobody"]},
        "session": {
            "session": [session, f"{patient}_{session}", f"{patient}_s999", "s999", "x_y_z"]
        },
        "recording": {
            "recording": [chosen, oracle.names_of(other)[0], "nosuch_windows.npz", stem + "x"]
        },
        "exclude_recording": {
            "exclude_recording": [*sorted(missing)[:1], other, "typo_s001_t000", "typo.npz"]
        },
    }
    return missing, lists


@pytest.fixture
def case(client: TestClient) -> tuple[Case, dict[str, Filters]]:
    manifest = manifests.generated(41, recordings=40, with_samples=True)
    missing, lists = build_lists(manifest)
    snapshot = load(client, "gen", manifest, missing)
    return Case(manifest, snapshot, missing), lists


def params_of(filters: Filters, options: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = [(name, value) for name, values in filters.items() for value in values]
    return pairs + [(key, str(value).lower()) for key, value in options.items()]


def ask(
    client: TestClient, kind: str, filters: Filters, options: dict[str, Any], method: str
) -> httpx.Response:
    path = f"/api/v1/datasets/gen/{kind}"
    if method == "GET":
        return client.get(path, params=params_of(filters, options))
    return client.post(path, json=filters | options)


def test_every_typo_is_named_in_every_json_answer(client: TestClient, case: Any) -> None:
    found, lists = case
    for filters in lists.values():
        expected = oracle_unmatched(found.manifest, filters)
        (name,) = filters
        # Each list mixes values the snapshot has with values it has not.
        assert expected[name]
        assert len(expected[name]) < len(set(filters[name]))
        warnings = [warning_text(found.snapshot, name, expected[name])]
        details = [
            {
                "kind": "unmatched_filter",
                "message": warnings[0],
                "parameter": name,
                "values": expected[name],
            }
        ]
        for kind, options in JSON_KINDS.items():
            for method in ("GET", "POST"):
                response = ask(client, kind, filters, options, method)
                assert response.status_code == 200, (kind, method, response.text)
                answer = response.json()
                assert answer["unmatched"] == expected, (kind, method)
                assert answer["unmatched_counts"] == {name: len(expected[name])}
                assert answer["warnings"][:1] == warnings
                assert answer["warning_details"][:1] == details
                if kind == "stats":
                    assert_matches(
                        answer, oracle.expected_stats(found.manifest, found.missing, filters)
                    )


def test_matched_values_are_not_named(client: TestClient, case: Any) -> None:
    found, lists = case
    for filters in lists.values():
        (name,) = filters
        matched = [
            v for v in filters[name] if v not in oracle_unmatched(found.manifest, filters)[name]
        ]
        assert matched
        kept = {name: matched}
        for kind, options in JSON_KINDS.items():
            for method in ("GET", "POST"):
                answer = ask(client, kind, kept, options, method).json()
                assert answer["unmatched"] == {}, (kind, method, kept)
                assert not [w for w in answer["warnings"] if w.startswith("unmatched_filter")]
                assert all(d["kind"] != "unmatched_filter" for d in answer["warning_details"])


def test_a_value_of_a_missing_recording_is_matched(client: TestClient, case: Any) -> None:
    found, _lists = case
    gone = sorted(found.missing)
    patient = oracle.names_of(gone[0])[1]
    filters = {"exclude_recording": gone, "exclude_patient": [patient]}
    assert oracle_unmatched(found.manifest, filters) == {}
    answer = client.post("/api/v1/datasets/gen/stats", json=filters | {"strict": True}).json()
    assert answer["unmatched"] == {}
    assert_matches(answer, oracle.expected_stats(found.manifest, found.missing, filters))


def test_several_filters_at_once(client: TestClient, case: Any) -> None:
    found, lists = case
    filters = lists["exclude_patient"] | lists["exclude_recording"] | {"category": ["seizure"]}
    expected = oracle_unmatched(found.manifest, filters)
    assert list(expected) == ["exclude_patient", "exclude_recording"]
    answer = client.post("/api/v1/datasets/gen/stats", json=filters).json()
    assert answer["unmatched"] == expected
    assert answer["warnings"][:2] == [
        warning_text(found.snapshot, name, values) for name, values in expected.items()
    ]
    assert_matches(answer, oracle.expected_stats(found.manifest, found.missing, filters))


def test_the_streamed_answers_name_them_in_headers(client: TestClient, case: Any) -> None:
    found, lists = case
    for filters in lists.values():
        expected = oracle_unmatched(found.manifest, filters)
        count = str(sum(len(v) for v in expected.values()))
        _, index = oracle.expected_balanced(found.manifest, found.missing, filters, seed=3)
        for output in ("jsonl", "json"):
            for method in ("GET", "POST"):
                if method == "GET":
                    params = params_of(filters, {"seed": 3, "format": output})
                    response = client.get("/api/v1/datasets/gen/balanced/index", params=params)
                else:
                    response = client.post(
                        f"/api/v1/datasets/gen/balanced/index?format={output}",
                        json=filters | {"seed": 3},
                    )
                assert response.status_code == 200, response.text
                assert json.loads(response.headers["x-unmatched-filter"]) == expected
                assert response.headers["x-unmatched-values"] == count
                entries = (
                    response.json()
                    if output == "json"
                    else [json.loads(line) for line in response.text.splitlines()]
                )
                assert [(e["cache_file"], e["window_idx"]) for e in entries] == index
        csv = client.get(
            "/api/v1/datasets/gen/breakdown", params=params_of(filters, {"format": "csv"})
        )
        assert csv.status_code == 200
        assert json.loads(csv.headers["x-unmatched-filter"]) == expected
    matched = client.get("/api/v1/datasets/gen/balanced/index", params={"seed": 3})
    assert "x-unmatched-filter" not in matched.headers


def test_a_long_list_in_the_header_is_cut_and_counted(client: TestClient, case: Any) -> None:
    _found, _ = case
    typos = [f"nobody_{i:05d}" for i in range(2000)]
    response = client.post(
        "/api/v1/datasets/gen/balanced/index", json={"exclude_patient": typos, "seed": 3}
    )
    assert response.status_code == 200
    assert response.headers["x-unmatched-values"] == "2000"
    shown = json.loads(response.headers["x-unmatched-filter"])
    assert len(response.headers["x-unmatched-filter"]) <= 4000
    assert 0 < len(shown["exclude_patient"]) < 2000
    assert shown["exclude_patient"] == sorted(typos)[: len(shown["exclude_patient"])]
    # The JSON answer of the same question lists the first 1,000 and counts them all.
    answer = client.post("/api/v1/datasets/gen/balanced", json={"exclude_patient": typos}).json()
    assert answer["unmatched"] == {"exclude_patient": sorted(typos)[:1000]}
    assert answer["unmatched_counts"] == {"exclude_patient": 2000}
    assert answer["warnings"][0].endswith(
        ", ".join(repr(t) for t in sorted(typos)[:20]) + " and 1,980 more"
    )
    strict = client.post(
        "/api/v1/datasets/gen/stats", json={"exclude_patient": typos, "strict": True}
    ).json()
    assert strict["unmatched"] == answer["unmatched"]
    assert strict["unmatched_counts"] == {"exclude_patient": 2000}


def refused(response: httpx.Response, expected: Filters, snapshot: int) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "unmatched_filter"
    assert body["unmatched"] == expected
    assert body["detail"].startswith(
        f"strict: filter values that match no recording of snapshot {snapshot}: "
    )
    for name, values in expected.items():
        assert f"{name}: " + ", ".join(repr(v) for v in values) in body["detail"]


def test_strict_refuses_and_names_them(client: TestClient, case: Any) -> None:
    found, lists = case
    for filters in lists.values():
        expected = oracle_unmatched(found.manifest, filters)
        for kind, options in JSON_KINDS.items():
            for method in ("GET", "POST"):
                strict = ask(client, kind, filters, options | {"strict": True}, method)
                refused(strict, expected, found.snapshot)
                lenient = ask(client, kind, filters, options | {"strict": False}, method)
                assert lenient.status_code == 200
                assert ask(client, kind, filters, options, method).status_code == 200
        params = params_of(filters, {"strict": True, "seed": 3})
        refused(
            client.get("/api/v1/datasets/gen/balanced/index", params=params),
            expected,
            found.snapshot,
        )
        body = filters | {"strict": True, "seed": 3}
        refused(
            client.post("/api/v1/datasets/gen/balanced/index", json=body),
            expected,
            found.snapshot,
        )
        csv = params_of(filters, {"strict": True, "format": "csv"})
        refused(client.get("/api/v1/datasets/gen/breakdown", params=csv), expected, found.snapshot)


def test_strict_answers_when_every_value_matches(client: TestClient, case: Any) -> None:
    found, _lists = case
    filters = {"exclude_recording": sorted(found.missing)}
    for kind, options in JSON_KINDS.items():
        for method in ("GET", "POST"):
            response = ask(client, kind, filters, options | {"strict": True}, method)
            assert response.status_code == 200, response.text
            assert response.json()["unmatched"] == {}


def test_a_cached_answer_never_lets_a_strict_question_through(
    client: TestClient, case: Any
) -> None:
    found, lists = case
    filters = lists["exclude_patient"]
    expected = oracle_unmatched(found.manifest, filters)
    for kind, options in JSON_KINDS.items():
        first = ask(client, kind, filters, options, "GET")
        again = ask(client, kind, filters, options, "GET")
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        etag = first.headers["etag"]
        path = f"/api/v1/datasets/gen/{kind}"
        strict = params_of(filters, options | {"strict": True})
        refused(client.get(path, params=strict), expected, found.snapshot)
        revalidated = client.get(path, params=strict, headers={"If-None-Match": etag})
        refused(revalidated, expected, found.snapshot)
        posted = client.post(path, json=filters | options | {"strict": True})
        refused(posted, expected, found.snapshot)
    index = "/api/v1/datasets/gen/balanced/index"
    lenient = client.get(index, params=params_of(filters, {"seed": 3}))
    assert lenient.status_code == 200
    strict_index = params_of(filters, {"seed": 3, "strict": True})
    etag = lenient.headers["etag"]
    refused(
        client.get(index, params=strict_index, headers={"If-None-Match": etag}),
        expected,
        found.snapshot,
    )


def test_the_strict_option_is_no_filter(client: TestClient, case: Any) -> None:
    response = client.get("/api/v1/datasets/gen/stats", params={"strict": "maybe"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("strict: ")


# -- the client and the CLI: strict by default ------------------------------------------------


def in_process(test_client: TestClient) -> SeizureStatsClient:
    """The client, its requests answered by the app in this process."""

    def handler(request: httpx.Request) -> httpx.Response:
        answer = test_client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.read(),
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k not in ("content-encoding", "content-length")
        }
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    return SeizureStatsClient(
        "http://testserver", transport=httpx.MockTransport(handler), retries=0
    )


def test_the_client_is_strict_by_default(client: TestClient, case: Any) -> None:
    found, lists = case
    filters = lists["exclude_patient"] | lists["recording"]
    expected = oracle_unmatched(found.manifest, filters)
    long = {"exclude_recording": [f"nope_{i}" for i in range(150)]}
    long_expected = oracle_unmatched(found.manifest, long)
    with in_process(client) as stats_client:
        for asked, unmatched in ((filters, expected), (long, long_expected)):
            for method in (stats_client.stats, stats_client.balanced):
                with pytest.raises(UnmatchedFilterError) as raised:
                    method("gen", **asked)
                assert isinstance(raised.value, APIError)
                assert raised.value.status_code == 422
                assert raised.value.unmatched == unmatched
                for name, values in unmatched.items():
                    assert f"{name}: {values[0]!r}" in str(raised.value)
            with pytest.raises(UnmatchedFilterError) as raised:
                list(stats_client.balanced_index("gen", **asked))
            assert raised.value.unmatched == unmatched

            answer = stats_client.stats("gen", strict=False, **asked)
            assert answer.unmatched == unmatched
            assert answer.warnings[: len(unmatched)] == [
                warning_text(found.snapshot, name, values) for name, values in unmatched.items()
            ]
            assert_matches(
                answer.model_dump(), oracle.expected_stats(found.manifest, found.missing, asked)
            )
            kept = stats_client.balanced("gen", strict=False, **asked)
            assert kept.unmatched == unmatched
            _, index = oracle.expected_balanced(found.manifest, found.missing, asked)
            count = sum(len(values) for values in unmatched.values())
            with pytest.warns(UnmatchedFilterWarning, match=f"^unmatched_filter: {count} filter"):
                entries = list(stats_client.balanced_index("gen", strict=False, **asked))
            assert [(e.cache_file, e.window_idx) for e in entries] == index
        # Values that all match: strict answers.
        matched = {"exclude_recording": sorted(found.missing)}
        assert stats_client.stats("gen", **matched).unmatched == {}


def cli_dataset(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[Manifest, int, dict[str, Filters]]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SEIZURE_STATS_URL", raising=False)
    manifest = manifests.generated(41, recordings=40)
    _, lists = build_lists(manifest)
    path = manifests.write(tmp_path / "m.json", manifest)
    imported = CliRunner().invoke(main, ["import", str(path), "--dataset", "gen"])
    assert imported.exit_code == 0, imported.output
    found = re.search(r"imported as snapshot (\d+) ", imported.output)
    assert found, imported.output
    return manifest, int(found.group(1)), lists


def cli_options(filters: Filters) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, vs in filters.items() for value in vs]


def expected_refusal(snapshot: int, expected: Filters) -> str:
    named = "; ".join(
        f"{name}: " + ", ".join(repr(v) for v in values) for name, values in expected.items()
    )
    return f"strict: filter values that match no recording of snapshot {snapshot}: {named}"


def test_the_cli_is_strict_by_default(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    manifest, snapshot, lists = cli_dataset(database_url, monkeypatch, tmp_path)
    cli = CliRunner()
    filters = lists["exclude_patient"] | lists["session"]
    expected = oracle_unmatched(manifest, filters)
    index = tmp_path / "index.jsonl"
    for command in (["stats"], ["balanced"], ["balanced", "--index", str(index)]):
        failed = cli.invoke(main, [*command, "--dataset", "gen", *cli_options(filters)])
        assert failed.exit_code == 1
        assert expected_refusal(snapshot, expected) in failed.output
        assert not index.exists()
    lenient = cli.invoke(
        main, ["stats", "--dataset", "gen", *cli_options(filters), "--no-strict", "--json"]
    )
    assert lenient.exit_code == 0, lenient.output
    answer = json.loads(lenient.output)
    assert answer["unmatched"] == expected
    assert_matches(answer, oracle.expected_stats(manifest, set(), filters))
    shown = cli.invoke(main, ["balanced", "--dataset", "gen", *cli_options(filters), "--no-strict"])
    assert shown.exit_code == 0, shown.output
    for name, values in expected.items():
        assert f"  warning: {warning_text(snapshot, name, values)}" in shown.output.splitlines()


@pytest.mark.e2e
def test_the_cli_and_client_against_a_server(live_server: str, database_url: str) -> None:
    token = make_token(database_url, "trainer", "write")
    manifest = manifests.generated(41, recordings=40)
    _, lists = build_lists(manifest)
    snapshot = load(live_server, "gen", manifest, token=token)
    filters = lists["exclude_recording"]
    expected = oracle_unmatched(manifest, filters)
    cli = CliRunner(env={"SEIZURE_STATS_URL": live_server, "SEIZURE_STATS_TOKEN": token})
    failed = cli.invoke(main, ["stats", "--dataset", "gen", *cli_options(filters)])
    assert failed.exit_code == 1
    assert expected_refusal(snapshot, expected) in failed.output
    assert "422 unmatched_filter: " in failed.output
    lenient = cli.invoke(main, ["stats", "--dataset", "gen", *cli_options(filters), "--no-strict"])
    assert lenient.exit_code == 0, lenient.output
    warning = warning_text(snapshot, "exclude_recording", expected["exclude_recording"])
    assert f"warning: {warning}" in lenient.output
    with SeizureStatsClient(live_server, token=token, retries=0) as remote:
        with pytest.raises(UnmatchedFilterError) as raised:
            list(remote.balanced_index("gen", **filters))
        assert raised.value.unmatched == expected
        assert remote.stats("gen", strict=False, **filters).unmatched == expected


def test_the_readme_examples_name_a_patient_the_demo_has() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    named = re.findall(r'exclude_patient=\["(\w+)"\]', readme)
    named += re.findall(r"--exclude-patient (\w+)", readme)
    assert named
    demo = {r.cache_file.split("_")[0] for r in generate_recordings(300, seed=7)}
    assert set(named) <= demo, set(named) - demo


def test_the_dashboard_shows_the_warning(client: TestClient, case: Any) -> None:
    found, lists = case
    filters = lists["exclude_patient"]
    page = client.get(
        "/datasets/gen", params={"exclude_patient": ",".join(filters["exclude_patient"])}
    )
    assert page.status_code == 200, page.text
    shown = f"unmatched_filter: exclude_patient: no recording of snapshot {found.snapshot} matches"
    assert shown in page.text
