"""The helpers for PyTorch users: pos_weight as BCEWithLogitsLoss takes it, and the map-style
dataset over the balanced index, in the existing balanced dataset's order, read from NPZ files.

torch is not a dependency of the client; scripts/test installs it for the tests that hand our
output to it (skipped without it, failed under CI=true).
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from seizure_stats.client import SeizureStatsClient
from seizure_stats.schemas.questions import IndexEntry
from seizure_stats.training import BalancedWindows, pos_weight_of, pos_weight_tensor, read_row
from tests.conftest import make_token
from tests.support import oracle
from tests.support.ci import cannot_run
from tests.support.scan_cache import brute_force

SAMPLES = 64
CHANNELS = 19


def import_torch() -> Any:
    """torch, for the tests that hand our output to it; scripts/test installs it, CI needs it."""
    try:
        import torch
    except ImportError:
        cannot_run("torch is not installed (scripts/test installs it)")
    return torch


def window_rows(file_number: int, n: int) -> np.ndarray[Any, Any]:
    """Windows whose every value says which file and row it is, so a wrong read shows."""
    rows = np.arange(n, dtype=np.float32)[:, None, None]
    channels = np.arange(CHANNELS, dtype=np.float32)[None, :, None] / 100
    samples = np.linspace(0, 0.001, SAMPLES, dtype=np.float32)[None, None, :]
    return file_number * 1000 + rows + channels + samples


def write_cache(directory: Path, *, recordings: int = 14, seed: int = 5) -> list[str]:
    """NPZ cache files of TUSZ-like names, as savez_compressed writes them (windows and
    per-sample labels, float32); their names."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(recordings):
        name = f"p{number % 5:07d}_s{number:03d}_t000_windows.npz"
        n = rng.randrange(4, 18)
        labels = np.zeros((n, SAMPLES), dtype=np.float32)
        for row in range(n):
            roll = rng.random()
            if roll < 0.25:
                start = rng.randrange(1, SAMPLES - 1)
                labels[row, start:] = 1.0  # partial
            elif roll < 0.35:
                labels[row] = 1.0  # full
        np.savez_compressed(directory / name, windows=window_rows(number, n), labels=labels)
        names.append(name)
    return names


def origin_order(
    cache_dir: Path,
    manifest: dict[str, list[dict[str, Any]]],
    *,
    full_ratio: float = 0.3,
    background_ratio: float = 2.5,
    seed: int = 42,
) -> list[tuple[str, int]]:
    """The existing balanced dataset's entries, step by step as it builds them (docs/design.md):
    existence checked on the directory itself, and the kept (path, index) rows shuffled as an
    object array, the way it shuffles them."""
    partial, full, background = (manifest[c] for c in oracle.CATEGORIES)
    rng = np.random.default_rng(seed)
    kept: list[tuple[str, int]] = [
        (e["cache_file"], e["window_idx"])
        for e in partial
        if (cache_dir / e["cache_file"]).exists()
    ]
    for entries, ratio in ((full, full_ratio), (background, background_ratio)):
        want = int(ratio * len(partial))
        if entries and want > 0:
            for pick in rng.choice(len(entries), size=min(want, len(entries)), replace=False):
                entry = entries[pick]
                if (cache_dir / entry["cache_file"]).exists():
                    kept.append((entry["cache_file"], entry["window_idx"]))
    rows = np.array(kept, dtype=object)
    rng.shuffle(rows)
    return [(str(name), int(idx)) for name, idx in rows.tolist()]


@pytest.mark.e2e
def test_the_dataset_over_the_balanced_index_is_the_existing_balanced_dataset(
    live_server: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    names = write_cache(cache_dir)
    manifest = brute_force(cache_dir)["manifest"]
    plain = {
        category: [{"cache_file": e["cache_file"], "window_idx": e["window_idx"]} for e in entries]
        for category, entries in manifest.items()
    }
    for entries in plain.values():  # the lists' order is the manifest's, whatever it is
        random.Random(len(entries)).shuffle(entries)
    gone = [names[2], names[9]]
    for name in gone:
        (cache_dir / name).unlink()

    token = make_token(database_url, "training-writer", "write")
    with SeizureStatsClient(live_server, token=token, retries=0) as client:
        client.import_manifest("tusz-train", io.BytesIO(json.dumps(plain).encode()))
        client.report_presence("tusz-train", missing=gone)  # what `seizure-stats verify` does
        balanced = client.balanced("tusz-train", seed=7)
        stats = client.stats("tusz-train")
        from_arrays = BalancedWindows(cache_dir, client.balanced_index_arrays("tusz-train", seed=7))
        from_lines = BalancedWindows(cache_dir, client.balanced_index("tusz-train", seed=7))

    expected = origin_order(cache_dir, plain, seed=7)
    assert len(expected) == balanced.counts.total > 0
    for dataset in (from_arrays, from_lines):
        assert len(dataset) == len(expected)
        assert [dataset.entry(i) for i in range(len(dataset))] == expected

    seizure_items = 0
    for i, (window, labels) in enumerate(from_arrays):  # what a DataLoader asks, one by one
        name, idx = expected[i]
        with np.load(cache_dir / name) as stored:
            assert np.array_equal(window, stored["windows"][idx].astype(np.float32))
            assert np.array_equal(labels, stored["labels"][idx].astype(np.float32))
        assert (window.dtype, window.shape) == (np.float32, (CHANNELS, SAMPLES))
        assert (labels.dtype, labels.shape) == (np.float32, (SAMPLES,))
        assert window.flags.writeable  # torch.from_numpy warns of read-only arrays
        seizure_items += bool((labels > 0).any())

    # The loss weight of training on these items is the balanced answer's, not the subset's.
    p = seizure_items / len(from_arrays)
    assert balanced.seizure_ratio == p
    assert pos_weight_of(balanced) == math.sqrt((1 - p) / p)
    assert pos_weight_of(stats) != pos_weight_of(balanced)

    # The README's lines, as they stand, build the same dataset and weight (seed 42 there).
    scope = run_readme_lines(live_server, cache_dir, monkeypatch)
    with SeizureStatsClient(live_server) as client:
        weight = client.balanced("tusz-train", seed=42).pos_weight
    assert scope["criterion"] == {
        "reduction": "none",
        "pos_weight": ("tensor", [weight], "float32", "cpu"),
    }
    dataset = scope["train_dataset"]
    assert [dataset.entry(i) for i in range(len(dataset))] == origin_order(cache_dir, plain)
    assert scope["train_loader"][0] is dataset


def readme_block(heading: str) -> str:
    """The first Python block of a README section."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = re.split(r"\n##+ ", readme.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no Python block under {heading!r}"
    return match.group(1)


def run_readme_lines(url: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run "Replacing the dataset and pos_weight code" against `url`, with stand-ins for torch
    and for the names the training script around it defines."""
    monkeypatch.setenv("SEIZURE_STATS_URL", url)
    fake_torch = SimpleNamespace(
        float32="float32",
        tensor=lambda values, dtype, device: ("tensor", values, dtype, device),
    )
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    scope: dict[str, Any] = {
        "train_cache_dir": cache_dir,
        "device": "cpu",
        "nn": SimpleNamespace(BCEWithLogitsLoss=lambda **options: options),
        "DataLoader": lambda dataset, **options: (dataset, options),
    }
    code = readme_block("### Replacing the dataset and pos_weight code")
    exec(compile(code, "README.md", "exec"), scope)
    return scope


def test_items_are_read_from_any_npz_layout(tmp_path: Path) -> None:
    windows = window_rows(3, 6)
    labels = (np.arange(6 * SAMPLES).reshape(6, SAMPLES) % 5 == 0).astype(np.float32)
    np.savez(tmp_path / "stored_windows.npz", windows=windows, labels=labels)
    np.savez_compressed(tmp_path / "fortran_windows.npz", windows=np.asfortranarray(windows))
    np.savez_compressed(
        tmp_path / "big_endian_windows.npz",
        windows=windows.astype(">f4"),
        labels=labels.astype(np.float64),
    )
    dataset = BalancedWindows(
        tmp_path,
        [
            IndexEntry(cache_file="stored_windows.npz", window_idx=5),
            ("fortran_windows.npz", 2),
            ("big_endian_windows.npz", 0),
            ("stored_windows.npz", 0),
        ],
    )
    assert len(dataset) == 4
    for i, (file_row, with_labels) in enumerate([(5, True), (2, False), (0, True), (0, True)]):
        window, row_labels = dataset[i]
        assert window.dtype == row_labels.dtype == np.float32
        assert np.array_equal(window, windows[file_row])
        # A file without labels gives zeros, one per sample, as the existing dataset does.
        want = labels[file_row] if with_labels else np.zeros(SAMPLES, dtype=np.float32)
        assert np.array_equal(row_labels, want)
    assert dataset.entry(-1) == ("stored_windows.npz", 0)
    assert np.array_equal(dataset[-4][0], windows[5])
    with pytest.raises(IndexError):
        dataset[4]
    with pytest.raises(IndexError, match="6 rows, not row 9"):
        read_row(tmp_path / "stored_windows.npz", "windows", 9)
    assert read_row(tmp_path / "fortran_windows.npz", "labels", 0) is None
    assert len(list(dataset)) == 4  # iterable as a sequence, stopping at IndexError


def test_pos_weight_of_any_answer() -> None:
    class Part:
        pos_weight = 2.5

    assert pos_weight_of(Part()) == 2.5
    assert pos_weight_of(1.39) == 1.39
    assert pos_weight_of(3) == 3.0
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="positive finite"):
            pos_weight_of(bad)


def test_pos_weight_tensor_says_what_it_needs_without_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails, as where it is absent
    with pytest.raises(ImportError, match="pos_weight_tensor needs PyTorch"):
        pos_weight_tensor(1.39)


def test_pos_weight_tensor_is_what_bce_with_logits_loss_takes() -> None:
    torch = import_torch()
    weight = pos_weight_tensor(1.39)
    assert weight.dtype == torch.float32
    assert tuple(weight.shape) == (1,)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, SAMPLES)).astype(np.float32)
    targets = (rng.random((4, SAMPLES)) < 0.3).astype(np.float32)
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=weight)(
        torch.from_numpy(logits), torch.from_numpy(targets)
    )
    # The weighted binary cross-entropy, written out in float64.
    x, y = logits.astype(np.float64), targets.astype(np.float64)
    log_p, log_not_p = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    expected = np.mean(-(np.float32(1.39) * y * log_p + (1 - y) * log_not_p))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_a_data_loader_takes_the_dataset_as_it_is(tmp_path: Path) -> None:
    torch = import_torch()
    names = write_cache(tmp_path, recordings=3)
    entries = [(name, 1) for name in names] + [(names[0], 3)]
    dataset = BalancedWindows(tmp_path, entries)
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=workers)
        batches = list(loader)
        assert [tuple(w.shape) for w, _ in batches] == [(2, CHANNELS, SAMPLES)] * 2
        assert batches[0][0].dtype == torch.float32
        assert torch.equal(batches[1][0][1], torch.from_numpy(window_rows(0, 4)[3]))
        assert tuple(batches[0][1].shape) == (2, SAMPLES)
