"""An independent reference: DESIGN.md's semantics computed by brute force over a manifest dict.

Deliberately naive (loops over every entry, plain lists) and sharing no code with app/, so
that agreement between the two is evidence, not a tautology.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

CATEGORIES = ("partial_seizure", "full_seizure", "no_seizure")
Manifest = dict[str, list[dict[str, Any]]]


def names_of(cache_file: str) -> tuple[str, str, str | None]:
    """(stem, patient, session) per DESIGN.md's naming rule."""
    stem = cache_file
    for suffix in ("_windows.npz", ".npz"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    match = re.fullmatch(r"([^_]+)_(s\d+)_(t\d+)", stem)
    if match:
        return stem, match.group(1), match.group(2)
    return stem, stem.split("_")[0], None


def entry_matches(cache_file: str, category: str, filters: dict[str, list[str]]) -> bool:
    stem, patient, session = names_of(cache_file)
    if filters.get("patient") and patient not in filters["patient"]:
        return False
    if filters.get("exclude_patient") and patient in filters["exclude_patient"]:
        return False
    if filters.get("session"):
        ok = False
        for value in filters["session"]:
            if "_" in value:
                want_patient, want_session = value.rsplit("_", 1)
                ok = ok or (patient == want_patient and session == want_session)
            else:
                ok = ok or session == value
        if not ok:
            return False
    if filters.get("recording") and not (
        cache_file in filters["recording"] or stem in filters["recording"]
    ):
        return False
    if filters.get("category"):
        wanted = set()
        for value in filters["category"]:
            wanted |= {"partial_seizure", "full_seizure"} if value == "seizure" else {value}
        if category not in wanted:
            return False
    return True


def subset_lists(manifest: Manifest, filters: dict[str, list[str]]) -> Manifest:
    return {
        category: [
            e for e in manifest[category] if entry_matches(e["cache_file"], category, filters)
        ]
        for category in CATEGORIES
    }


def sqrt_weight(p: float) -> float:
    return math.sqrt((1 - p) / p) if 0 < p < 0.5 else 1.0


def linear_weight(p: float) -> float:
    return (1 - p) / p if 0 < p < 1 else 1.0


def effective_weight(n_pos: int, n_neg: int, beta: float) -> float:
    if n_pos == 0 or n_neg == 0:
        return 1.0
    w_pos = (1 - beta) / (1 - beta**n_pos)
    w_neg = (1 - beta) / (1 - beta**n_neg)
    return w_pos / w_neg


def expected_stats(
    manifest: Manifest,
    missing: set[str],
    filters: dict[str, list[str]] | None = None,
    weighting: str = "sqrt",
    basis: str = "window",
    beta: float = 0.9999,
) -> dict[str, Any]:
    subset = subset_lists(manifest, filters or {})
    counts = dict.fromkeys(CATEGORIES, 0)
    positive = samples = missing_windows = 0
    recordings: set[str] = set()
    missing_recordings: set[str] = set()
    for category in CATEGORIES:
        for entry in subset[category]:
            if entry["cache_file"] in missing:
                missing_windows += 1
                missing_recordings.add(entry["cache_file"])
                continue
            counts[category] += 1
            recordings.add(entry["cache_file"])
            positive += entry.get("n_pos", 0)
            samples += entry.get("n_samples", 0)
    seizure = counts["partial_seizure"] + counts["full_seizure"]
    total = seizure + counts["no_seizure"]
    seizure_ratio = seizure / total if total else 0.0
    has_samples = any("n_pos" in e for c in CATEGORIES for e in manifest[c])
    sample_ratio = (positive / samples if samples else 0.0) if has_samples else None
    if basis == "sample":
        p, n_pos, n_neg = (positive / samples if samples else 0.0), positive, samples - positive
    else:
        p, n_pos, n_neg = seizure_ratio, seizure, counts["no_seizure"]
    weight = {
        "sqrt": lambda: sqrt_weight(p),
        "linear": lambda: linear_weight(p),
        "effective": lambda: effective_weight(n_pos, n_neg, beta),
        "none": lambda: 1.0,
    }[weighting]()
    return {
        "counts": {
            "no_seizure": counts["no_seizure"],
            "partial_seizure": counts["partial_seizure"],
            "full_seizure": counts["full_seizure"],
            "seizure": seizure,
            "total": total,
        },
        "samples": {"positive": positive, "total": samples}
        if has_samples
        else {"positive": None, "total": None},
        "seizure_ratio": seizure_ratio,
        "sample_ratio": sample_ratio,
        "pos_weight": weight,
        "recordings": len(recordings),
        "missing_windows": missing_windows,
        "missing_recordings": len(missing_recordings),
    }


def expected_balanced(
    manifest: Manifest,
    missing: set[str],
    filters: dict[str, list[str]] | None = None,
    full_ratio: float = 0.3,
    background_ratio: float = 2.5,
    seed: int = 42,
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """DESIGN.md's balanced selection, step by step, the way the training dataset does it."""
    subset = subset_lists(manifest, filters or {})
    partial_list, full_list, background_list = (subset[c] for c in CATEGORIES)
    if not partial_list:
        raise ValueError("nothing to balance around")
    rng = np.random.default_rng(seed)
    kept: list[tuple[str, int, str]] = []
    for entry in partial_list:
        if entry["cache_file"] not in missing:
            kept.append((entry["cache_file"], entry["window_idx"], "partial_seizure"))
    for entries, ratio_value, category in (
        (full_list, full_ratio, "full_seizure"),
        (background_list, background_ratio, "no_seizure"),
    ):
        want = int(ratio_value * len(partial_list))
        if entries and want > 0:
            picks = rng.choice(len(entries), size=min(want, len(entries)), replace=False)
            for pick in picks:
                entry = entries[pick]
                if entry["cache_file"] not in missing:
                    kept.append((entry["cache_file"], entry["window_idx"], category))
    perm = np.arange(len(kept))
    rng.shuffle(perm)
    ordered = [kept[i] for i in perm]
    counts = {c: sum(1 for k in kept if k[2] == c) for c in CATEGORIES}
    return counts, [(name, idx) for name, idx, _ in ordered]
