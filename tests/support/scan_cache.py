"""Real NPZ cache directories for scan tests, and an independent brute-force scan of them.

The brute force shares no code with app/: np.load of every file, a loop over windows, the
docs/design.md category rule, and the documented treatment of bad files (unloadable, no labels,
wrong rank, no windows or empty rows, any NaN, or a window length other than most files').
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from app.demo import generate_recordings

CATEGORIES = ("partial_seizure", "full_seizure", "no_seizure")
WINDOW = 15360

# name -> issue code the scan must report
BAD_FILES = {
    "bad_s001_t000_windows.npz": "unreadable",  # truncated copy of a good file
    "bad_s001_t001_windows.npz": "unreadable",  # not a zip at all
    "bad_s001_t002_windows.npz": "no_labels",
    "bad_s001_t003_windows.npz": "wrong_rank",
    "bad_s001_t004_windows.npz": "length_mismatch",
    "bad_s001_t005_windows.npz": "nan_labels",
    "bad_s001_t006_windows.npz": "unreadable",  # a flipped byte in the labels member
    "bad_s001_t007_windows.npz": "no_windows",
}


def save(path: Path, labels: np.ndarray[Any, Any] | None, n_windows: int | None = None) -> None:
    """A cache file: small `windows` (the scan never reads it) and full-size labels."""
    n = n_windows if n_windows is not None else (labels.shape[0] if labels is not None else 3)
    arrays: dict[str, Any] = {"windows": np.zeros((n, 19, 16), dtype=np.float32)}
    if labels is not None:
        arrays["labels"] = labels
    np.savez_compressed(path, **arrays)


def build_cache(directory: Path, *, recordings: int = 10, seed: int = 11) -> Path:
    """Good TUSZ-like files (one with soft and negative labels), the BAD_FILES, and a non-NPZ."""
    directory.mkdir(parents=True, exist_ok=True)
    good = generate_recordings(recordings, seed=seed, seizure_share=0.5)
    for position, recording in enumerate(good):
        labels = recording.labels()
        if position == 0:  # soft labels count as positive; zero, -0.0 and negatives do not
            labels = labels * 0.25
            labels[:, ::7] = -1.0
            labels[:, 1::7] = -0.0
            labels[0, :10] = 1e-30
        save(directory / recording.cache_file, labels)
    # An NPZ with another naming scheme: the default pattern leaves it alone.
    save(directory / "other.npz", np.zeros((2, WINDOW), dtype=np.float32))
    (directory / "README.txt").write_text("not a cache file")

    first = directory / good[0].cache_file
    bad = sorted(BAD_FILES)
    (directory / bad[0]).write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    (directory / bad[1]).write_bytes(b"this is not an npz file\n")
    save(directory / bad[2], None)
    save(directory / bad[3], np.zeros((4, 2, WINDOW // 2), dtype=np.float32))
    short = np.zeros((5, WINDOW // 2), dtype=np.float32)
    short[2:, :100] = 1.0
    save(directory / bad[4], short)
    with_nan = np.zeros((6, WINDOW), dtype=np.float32)
    with_nan[3, 500] = np.nan
    save(directory / bad[5], with_nan)
    flipped = np.zeros((8, WINDOW), dtype=np.float32)
    flipped[2:5, 1000:9000] = 1.0
    save(directory / bad[6], flipped)
    _flip_labels_byte(directory / bad[6])
    save(directory / bad[7], np.zeros((0, WINDOW), dtype=np.float32))
    return directory


def _flip_labels_byte(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("labels.npy")
    data = bytearray(path.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(data))


def copy_cache(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)  # copy2 keeps mtimes
    return target


def brute_force(directory: Path, threshold: float = 0.99) -> dict[str, Any]:
    """Manifest (with n_pos/n_samples), sample sums and the set of files left out."""
    loaded: dict[str, np.ndarray[Any, Any]] = {}
    left_out: set[str] = set()
    for path in sorted(directory.glob("*_windows.npz")):
        try:
            with np.load(path) as archive:
                labels = archive["labels"]
        except Exception:
            left_out.add(path.name)
            continue
        if labels.ndim != 2 or 0 in labels.shape or np.isnan(labels).any():
            left_out.add(path.name)
            continue
        loaded[path.name] = labels
    length = Counter(labels.shape[1] for labels in loaded.values()).most_common(1)[0][0]
    manifest: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    positive = total = 0
    for name in sorted(loaded):
        labels = loaded[name]
        if labels.shape[1] != length:
            left_out.add(name)
            continue
        for idx in range(labels.shape[0]):
            row = labels[idx]
            n_pos = int(np.sum(row > 0))
            share = n_pos / len(row)
            category = (
                "no_seizure"
                if share == 0
                else "full_seizure"
                if share >= threshold
                else "partial_seizure"
            )
            manifest[category].append(
                {"cache_file": name, "window_idx": idx, "n_pos": n_pos, "n_samples": len(row)}
            )
            positive += n_pos
            total += len(row)
    plain = {
        c: [{"cache_file": e["cache_file"], "window_idx": e["window_idx"]} for e in entries]
        for c, entries in manifest.items()
    }
    return {
        "manifest": manifest,
        "manifest_json": json.dumps(plain),
        "positive": positive,
        "total": total,
        "left_out": left_out,
        "counts": {c: len(manifest[c]) for c in CATEGORIES},
    }
