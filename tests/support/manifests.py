"""Test data: a small hand-checked manifest and seeded generated ones."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


def windows(*entries: tuple[str, int]) -> list[dict[str, Any]]:
    """Manifest entries, one per (cache_file, window_idx)."""
    return [{"cache_file": name, "window_idx": index} for name, index in entries]


# Hand-checked: 3 recordings of 2 patients.
#   aaaaaaaa_s001_t000 (A1): partial 0,1  full 2  no 3,4
#   aaaaaaaa_s002_t000 (A2): partial 0    no 1,2,3
#   bbbbbbbb_s001_t001 (B1): full 0       no 1,2
# => partial 3, full 2, no_seizure 7; seizure 5 of 12.
A1, A2, B1 = (
    f"{stem}_windows.npz"
    for stem in ("aaaaaaaa_s001_t000", "aaaaaaaa_s002_t000", "bbbbbbbb_s001_t001")
)
SMALL: dict[str, list[dict[str, Any]]] = {
    "partial_seizure": windows((A1, 0), (A1, 1), (A2, 0)),
    "full_seizure": windows((A1, 2), (B1, 0)),
    "no_seizure": windows((A1, 3), (A1, 4), (A2, 1), (A2, 2), (A2, 3), (B1, 1), (B1, 2)),
}


def generated(
    seed: int,
    recordings: int = 40,
    *,
    with_samples: bool = False,
    odd_names: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """A random manifest: TUSZ names (and some others), shuffled order within each category."""
    rng = random.Random(seed)
    patients = [f"p{rng.randrange(10**6):06d}" for _ in range(max(2, recordings // 4))]
    manifest: dict[str, list[dict[str, Any]]] = {
        "partial_seizure": [],
        "full_seizure": [],
        "no_seizure": [],
    }
    names: set[str] = set()
    while len(names) < recordings:
        patient = rng.choice(patients)
        if odd_names and rng.random() < 0.15:
            name = rng.choice(
                [f"{patient}_{rng.randrange(99)}.npz", f"{patient}{rng.randrange(9)}"]
            )
        else:
            name = f"{patient}_s{rng.randrange(1, 9):03d}_t{rng.randrange(4):03d}_windows.npz"
        names.add(name)
    for name in sorted(names):
        seizure_recording = rng.random() < 0.35
        for idx in range(rng.randrange(1, 30)):
            roll = rng.random()
            if seizure_recording and roll < 0.25:
                category = "partial_seizure"
            elif seizure_recording and roll < 0.4:
                category = "full_seizure"
            else:
                category = "no_seizure"
            entry: dict[str, Any] = {"cache_file": name, "window_idx": idx}
            if with_samples:
                n = 15360
                entry["n_samples"] = n
                entry["n_pos"] = {
                    "no_seizure": 0,
                    "full_seizure": rng.randrange(int(0.99 * n) + 1, n + 1),
                    "partial_seizure": rng.randrange(1, int(0.99 * n)),
                }[category]
            manifest[category].append(entry)
    for entries in manifest.values():
        rng.shuffle(entries)
    return manifest


def recordings_of(manifest: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted({e["cache_file"] for entries in manifest.values() for e in entries})


def write(path: Path, manifest: dict[str, Any]) -> Path:
    path.write_text(json.dumps(manifest))
    return path
