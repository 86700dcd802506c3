"""An independent reference: docs/design.md's semantics computed by brute force over a manifest dict.

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
    """(stem, patient, session) per docs/design.md's naming rule."""
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
    if filters.get("exclude_recording") and (
        cache_file in filters["exclude_recording"] or stem in filters["exclude_recording"]
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


def counts_of(by_category: dict[str, int]) -> dict[str, int]:
    """An answer's `counts`: each category's windows, then seizure (partial + full) and total."""
    seizure = by_category["partial_seizure"] + by_category["full_seizure"]
    return {
        "no_seizure": by_category["no_seizure"],
        "partial_seizure": by_category["partial_seizure"],
        "full_seizure": by_category["full_seizure"],
        "seizure": seizure,
        "total": seizure + by_category["no_seizure"],
    }


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
        "counts": counts_of(counts),
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
    """docs/design.md's balanced selection, step by step, the way the training dataset does it."""
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


def group_key(cache_file: str, by: str) -> tuple[str, str, str | None]:
    """(key, patient, session) of the group a recording belongs to when broken down `by`."""
    _, patient, session = names_of(cache_file)
    if by == "patient":
        return patient, patient, None
    if by == "session":
        return (f"{patient}_{session}" if session else patient), patient, session
    return cache_file, patient, session


def expected_breakdown(
    manifest: Manifest,
    missing: set[str],
    filters: dict[str, list[str]] | None,
    by: str,
) -> list[dict[str, Any]]:
    """Every group with a window in the subset, in key order (code point order)."""
    subset = subset_lists(manifest, filters or {})
    groups: dict[str, dict[str, Any]] = {}
    for category in CATEGORIES:
        for entry in subset[category]:
            name = entry["cache_file"]
            key = category if by == "category" else group_key(name, by)[0]
            group = groups.setdefault(
                key,
                {
                    "key": key,
                    "counts": dict.fromkeys(CATEGORIES, 0),
                    "recordings": set(),
                    "missing_windows": 0,
                    "positive": 0,
                    "samples": 0,
                },
            )
            if name in missing:
                group["missing_windows"] += 1
                continue
            group["counts"][category] += 1
            group["recordings"].add(name)
            group["positive"] += entry.get("n_pos", 0)
            group["samples"] += entry.get("n_samples", 0)
    total = sum(sum(g["counts"].values()) for g in groups.values())
    answer = []
    for key in sorted(groups):
        group = groups[key]
        counts = group["counts"]
        seizure = counts["partial_seizure"] + counts["full_seizure"]
        group_total = seizure + counts["no_seizure"]
        answer.append(
            {
                "key": key,
                "counts": {
                    "no_seizure": counts["no_seizure"],
                    "partial_seizure": counts["partial_seizure"],
                    "full_seizure": counts["full_seizure"],
                    "seizure": seizure,
                    "total": group_total,
                },
                "seizure_ratio": seizure / group_total if group_total else 0.0,
                "share": group_total / total if total else 0.0,
                "recordings": len(group["recordings"]),
                "missing_windows": group["missing_windows"],
                "positive": group["positive"],
                "samples": group["samples"],
            }
        )
    return answer


def expected_histogram(
    manifest: Manifest, missing: set[str], filters: dict[str, list[str]] | None, bins: int
) -> tuple[int, list[int]]:
    """(windows with n_pos == 0, counts per bin [i/bins, (i+1)/bins), the last closed)."""
    subset = subset_lists(manifest, filters or {})
    zero = 0
    counts = [0] * bins
    for category in CATEGORIES:
        for entry in subset[category]:
            if entry["cache_file"] in missing:
                continue
            if entry["n_pos"] == 0:
                zero += 1
                continue
            index = bins - 1
            for i in range(bins):
                # Exact rational comparison: n_pos / n_samples < (i + 1) / bins.
                if entry["n_pos"] * bins < (i + 1) * entry["n_samples"]:
                    index = i
                    break
            counts[index] += 1
    return zero, counts


def expected_diff(old: Manifest, new: Manifest) -> dict[str, Any]:
    """Windows added, removed and moved between two manifests, per category and recording."""

    def categories_of(manifest: Manifest) -> dict[tuple[str, int], str]:
        return {
            (e["cache_file"], e["window_idx"]): category
            for category in CATEGORIES
            for e in manifest[category]
        }

    before, after = categories_of(old), categories_of(new)
    added = dict.fromkeys(CATEGORIES, 0)
    removed = dict.fromkeys(CATEGORIES, 0)
    moves: dict[tuple[str, str], int] = {}
    recordings: dict[str, list[int]] = {}
    for window in sorted(set(before) | set(after)):
        was, now = before.get(window), after.get(window)
        if was == now:
            continue
        row = recordings.setdefault(window[0], [0, 0, 0])
        if was is None:
            added[str(now)] += 1
            row[0] += 1
        elif now is None:
            removed[was] += 1
            row[1] += 1
        else:
            moves[was, now] = moves.get((was, now), 0) + 1
            row[2] += 1
    return {"added": added, "removed": removed, "moves": moves, "recordings": recordings}
