"""The command line on DATABASE_URL: import, stats, balanced, verify, demo and their errors."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from app.cli import main
from seizure_stats.schemas.fold_values import MAX_FOLDS
from tests.support import manifests, oracle
from tests.test_folds import manifest_folds


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SEIZURE_STATS_URL", raising=False)
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_import_then_stats(cli: CliRunner, tmp_path: Path) -> None:
    path = manifests.write(tmp_path / "manifest.json", manifests.SMALL)
    out = run(cli, "import", str(path), "--dataset", "small")
    assert "imported as snapshot" in out
    assert "windows 12" in out
    again = run(cli, "import", str(path), "--dataset", "small")
    assert "already imported as snapshot" in again
    answer = json.loads(run(cli, "stats", "--dataset", "small", "--json"))
    expected = oracle.expected_stats(manifests.SMALL, set())
    assert answer["counts"] == expected["counts"]
    assert answer["pos_weight"] == expected["pos_weight"]
    text = run(cli, "stats", "--dataset", "small", "--patient", "bbbbbbbb")
    assert "seizure_ratio      0.333333" in text


def test_gzip_manifest_and_cache_dir(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "manifest.json.gz"
    path.write_bytes(gzip.compress(json.dumps(manifests.SMALL).encode()))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "aaaaaaaa_s001_t000_windows.npz").touch()
    (cache / "aaaaaaaa_s002_t000_windows.npz").touch()
    result = cli.invoke(main, ["import", str(path), "--dataset", "d", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "1 missing" in result.output
    answer = json.loads(run(cli, "stats", "--dataset", "d", "--json"))
    assert answer["missing_windows"] == 3
    assert answer["counts"]["total"] == 9


def test_verify_updates_presence(cli: CliRunner, tmp_path: Path) -> None:
    path = manifests.write(tmp_path / "m.json", manifests.SMALL)
    run(cli, "import", str(path), "--dataset", "d")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "bbbbbbbb_s001_t001_windows.npz").touch()
    (cache / "extra_windows.npz").touch()
    result = cli.invoke(main, ["verify", str(cache), "--dataset", "d"])
    assert result.exit_code == 0, result.output
    assert "1 recording present, 2 missing, 1 unexpected .npz file\n" in result.output
    answer = json.loads(run(cli, "stats", "--dataset", "d", "--json"))
    assert answer["counts"]["total"] == 3
    assert answer["missing_windows"] == 9


def test_balanced_writes_the_index(cli: CliRunner, tmp_path: Path) -> None:
    manifest = manifests.generated(4)
    run(cli, "import", str(manifests.write(tmp_path / "m.json", manifest)), "--dataset", "g")
    index = tmp_path / "index.jsonl"
    out = run(cli, "balanced", "--dataset", "g", "--seed", "7", "--index", str(index))
    counts, expected = oracle.expected_balanced(manifest, set(), seed=7)
    assert f"kept {sum(counts.values()):,} windows" in out
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    assert [(e["cache_file"], e["window_idx"]) for e in lines] == expected


def test_invalid_manifest_exits_non_zero_with_the_reason(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"partial_seizure": [{"cache_file": "../x", "window_idx": 0}]}))
    result = cli.invoke(main, ["import", str(bad), "--dataset", "d"])
    assert result.exit_code == 1
    assert "partial_seizure[0].cache_file" in result.output


def test_errors_are_one_line_and_non_zero(cli: CliRunner) -> None:
    result = cli.invoke(main, ["stats", "--dataset", "missing"])
    assert result.exit_code == 1
    assert "dataset 'missing' does not exist (database: " in result.output
    result = cli.invoke(main, ["stats", "--dataset", "x", "--category", "bogus"])
    assert result.exit_code == 1
    assert "category" in result.output
    result = cli.invoke(main, ["stats", "--dataset", "x", "--weighting", "cubic"])
    assert result.exit_code == 2


def test_demo_loads_a_dataset_with_sample_counts(cli: CliRunner) -> None:
    out = run(cli, "demo", "--recordings", "40", "--dataset", "demo")
    assert "demo: snapshot" in out
    answer = json.loads(run(cli, "stats", "--dataset", "demo", "--json", "--basis", "sample"))
    assert answer["samples"]["total"] == 15360 * (answer["counts"]["total"])
    assert answer["missing_recordings"] >= 0
    listed = run(cli, "datasets")
    assert listed.startswith("demo: snapshot")


def test_db_upgrade(cli: CliRunner) -> None:
    assert "database at head" in run(cli, "db", "upgrade")


def test_counts_are_worded_for_one_and_many(cli: CliRunner, tmp_path: Path) -> None:
    path = manifests.write(tmp_path / "m.json", manifests.SMALL)
    run(cli, "import", str(path), "--dataset", "small")
    assert re.fullmatch(r"small: snapshot \d+, 12 windows \(1 snapshot\)\n", run(cli, "datasets"))
    text = run(cli, "stats", "--dataset", "small", "--recording", "bbbbbbbb_s001_t001")
    assert "(1 recording)\n" in text


@pytest.fixture
def bare_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with no database in it, and no DATABASE_URL: the embedded default applies."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "SEIZURE_STATS_DATABASE_URL", "SEIZURE_STATS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SEIZURE_STATS_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["stats", "--dataset", "tusz-train"],
        ["balanced", "--dataset", "tusz-train"],
        ["datasets"],
        ["verify", ".", "--dataset", "tusz-train"],
        ["token", "list"],
        ["token", "revoke", "ci"],
    ],
)
def test_commands_that_add_nothing_never_create_a_database(
    bare_folder: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "no database at sqlite:///data/seizure-stats.db" in result.output
    assert list(bare_folder.iterdir()) == []


def test_commands_that_add_data_create_the_embedded_database(bare_folder: Path) -> None:
    path = manifests.write(bare_folder / "m.json", manifests.SMALL)
    run(CliRunner(), "import", str(path), "--dataset", "small")
    assert (bare_folder / "data" / "seizure-stats.db").is_file()
    result = CliRunner().invoke(main, ["stats", "--dataset", "smal"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: dataset 'smal' does not exist (database: sqlite:///data/seizure-stats.db)\n"
    )


def test_an_empty_filter_value_is_refused_not_read_as_no_filter(
    cli: CliRunner, tmp_path: Path
) -> None:
    """`--patient "$PATIENT"` with PATIENT unset answered for the whole dataset."""
    path = manifests.write(tmp_path / "manifest.json", manifests.SMALL)
    run(cli, "import", str(path), "--dataset", "small")
    hint = "leave the parameter out (or send []) for no filter"
    for command, args, detail in [
        ("stats", ["--patient", ""], "patient: empty value in ''"),
        ("stats", ["--exclude-patient", " "], "exclude_patient: empty value in ' '"),
        ("stats", ["--session", "s001,,s002"], "session: empty value in 's001,,s002'"),
        ("balanced", ["--recording", "x", "--recording", ""], "recording: empty value in ''"),
        ("balanced", ["--category", ","], "category: empty value in ','"),
    ]:
        result = cli.invoke(main, [command, "--dataset", "small", *args])
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {detail}: {hint}\n"


def test_folds_locally_equal_the_answer_over_http(
    cli: CliRunner, tmp_path: Path, client: TestClient
) -> None:
    manifest = manifests.generated(41, recordings=80)
    run(cli, "import", str(manifests.write(tmp_path / "m.json", manifest)), "--dataset", "cv")
    answer = json.loads(run(cli, "folds", "--dataset", "cv", "--k", "3", "--seed", "4", "--json"))
    over_http = client.get("/api/v1/datasets/cv/folds", params={"k": 3, "seed": 4}).json()
    assert answer == over_http
    assert [set(f["patients"]) for f in answer["folds"]] == manifest_folds(
        manifest, 3, 4, "category"
    )
    binary = json.loads(
        run(cli, "folds", "--dataset", "cv", "--k", "3", "--stratify", "seizure", "--json")
    )
    assert [set(f["patients"]) for f in binary["folds"]] == manifest_folds(
        manifest, 3, 0, "seizure"
    )
    text = run(cli, "folds", "--dataset", "cv", "--k", "3", "--seed", "4")
    lines = text.splitlines()
    assert lines[0].endswith(
        f"3 folds of {answer['patients']} patients, seed 4, stratified by category"
    )
    for fold, line in zip(answer["folds"], lines[2:5], strict=True):
        assert line.split() == [
            str(fold["fold"]),
            str(len(fold["patients"])),
            f"{fold['test']['counts']['total']:,}",
            f"{fold['test']['seizure_ratio']:.6f}",
            f"{fold['train']['counts']['total']:,}",
            f"{fold['train']['seizure_ratio']:.6f}",
            f"{fold['train']['pos_weight']:.6f}",
            f"{fold['balanced_train']['pos_weight']:.6f}",
        ]
    assert lines[5].startswith("spread of seizure_ratio: test ")
    small = manifests.write(tmp_path / "small.json", manifests.SMALL)
    run(cli, "import", str(small), "--dataset", "two-patients")
    refused = run(cli, "folds", "--dataset", "two-patients", "--k", "3", code=1)
    assert "k=3 is greater than the number of patients (2)" in refused
    assert f"k: Input should be less than or equal to {MAX_FOLDS}" in run(
        cli, "folds", "--dataset", "cv", "--k", "99", code=1
    )
    assert "k: Input should be greater than or equal to 2" in run(
        cli, "folds", "--dataset", "cv", "--k", "1", code=1
    )
