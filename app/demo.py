"""A seeded, TUSZ-like synthetic dataset: something real to look at on a fresh install.

Most recordings are seizure-free; a quarter carry 1-3 seizures of 20-300 s. Windows are 60 s at
256 Hz with a 10 s stride, and each window's label counts follow from the seizure intervals
exactly as a scan of real label arrays would find them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from seizure_stats.labels import DEFAULT_FULL_THRESHOLD, Category

SAMPLE_RATE = 256
WINDOW_SECONDS = 60
STRIDE_SECONDS = 10
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
STRIDE_SAMPLES = STRIDE_SECONDS * SAMPLE_RATE


@dataclass(frozen=True)
class SyntheticRecording:
    cache_file: str
    n_windows: int
    seizures: tuple[tuple[int, int], ...]  # [start, stop) in samples

    def positive_counts(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Seizure samples inside each window."""
        starts = np.arange(self.n_windows, dtype=np.int64) * STRIDE_SAMPLES
        stops = starts + WINDOW_SAMPLES
        counts = np.zeros(self.n_windows, dtype=np.int64)
        for onset, offset in self.seizures:
            counts += np.clip(np.minimum(stops, offset) - np.maximum(starts, onset), 0, None)
        return counts

    def labels(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The per-sample label rows a cache file of this recording would hold."""
        total = (self.n_windows - 1) * STRIDE_SAMPLES + WINDOW_SAMPLES
        signal = np.zeros(total, dtype=np.float32)
        for onset, offset in self.seizures:
            signal[onset:offset] = 1.0
        starts = np.arange(self.n_windows) * STRIDE_SAMPLES
        rows: np.ndarray[Any, np.dtype[np.float32]] = signal[
            starts[:, None] + np.arange(WINDOW_SAMPLES)
        ]
        return rows


def generate_recordings(
    n_recordings: int = 300, *, seed: int = 7, seizure_share: float = 0.25
) -> list[SyntheticRecording]:
    rng = np.random.default_rng(seed)
    n_patients = max(1, n_recordings // 5)
    patients = sorted({_patient_id(rng) for _ in range(n_patients * 2)})[:n_patients]
    recordings: list[SyntheticRecording] = []
    used: set[str] = set()
    while len(recordings) < n_recordings:
        patient = patients[int(rng.integers(len(patients)))]
        stem = f"{patient}_s{int(rng.integers(1, 30)):03d}_t{int(rng.integers(0, 8)):03d}"
        if stem in used:
            continue
        used.add(stem)
        minutes = int(rng.integers(5, 60))
        n_windows = (minutes * 60 - WINDOW_SECONDS) // STRIDE_SECONDS + 1
        length = (n_windows - 1) * STRIDE_SAMPLES + WINDOW_SAMPLES
        seizures: list[tuple[int, int]] = []
        if rng.random() < seizure_share:
            for _ in range(int(rng.integers(1, 4))):
                duration = int(rng.integers(20, 301)) * SAMPLE_RATE
                onset = int(rng.integers(0, max(1, length - duration)))
                seizures.append((onset, min(length, onset + duration)))
        recordings.append(
            SyntheticRecording(f"{stem}_windows.npz", n_windows, _merge_overlaps(seizures))
        )
    return sorted(recordings, key=lambda r: r.cache_file)


def _merge_overlaps(intervals: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return tuple(merged)


def _patient_id(rng: np.random.Generator) -> str:
    return "aaaa" + "".join(chr(ord("a") + int(c)) for c in rng.integers(0, 26, size=4))


def build_manifest(
    recordings: list[SyntheticRecording],
    *,
    full_threshold: float = DEFAULT_FULL_THRESHOLD,
    with_sample_counts: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The manifest a scan of these recordings writes: files sorted, windows in index order."""
    manifest: dict[str, list[dict[str, Any]]] = {c.key: [] for c in Category}
    for recording in recordings:
        for idx, n_pos in enumerate(recording.positive_counts().tolist()):
            share = n_pos / WINDOW_SAMPLES
            category = (
                Category.NO_SEIZURE
                if share == 0
                else Category.FULL_SEIZURE
                if share >= full_threshold
                else Category.PARTIAL_SEIZURE
            )
            entry: dict[str, Any] = {"cache_file": recording.cache_file, "window_idx": idx}
            if with_sample_counts:
                entry |= {"n_pos": n_pos, "n_samples": WINDOW_SAMPLES}
            manifest[category.key].append(entry)
    return manifest


def demo_manifest_bytes(n_recordings: int, seed: int) -> tuple[bytes, list[str]]:
    """A demo manifest as JSON, and the ~3 % of its recordings to report missing."""
    recordings = generate_recordings(n_recordings, seed=seed)
    rng = np.random.default_rng(seed + 1)
    missing = sorted(r.cache_file for r in recordings if rng.random() < 0.03)
    return json.dumps(build_manifest(recordings)).encode(), missing
