"""The category of every window from its per-sample labels: the rule of seizure_stats.labels
applied to numpy arrays, for the scanner."""

from __future__ import annotations

from typing import Any

import numpy as np

from seizure_stats.labels import DEFAULT_FULL_THRESHOLD, Category


def categorize_labels(
    labels: np.ndarray[Any, Any], full_threshold: float = DEFAULT_FULL_THRESHOLD
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], int]:
    """Categories and positive-sample counts of every row of a (windows, samples) label array.

    A sample is positive when its value is > 0 (soft labels count; zero, negative and NaN do not).
    Returns (category codes as int8, n_pos per window as int64, n_samples per window).
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must have 2 dimensions, got {labels.ndim}")
    n_samples = int(labels.shape[1])
    n_pos = np.count_nonzero(labels > 0, axis=1).astype(np.int64)
    return categorize_counts(n_pos, n_samples, full_threshold), n_pos, n_samples


def categorize_counts(
    n_pos: np.ndarray[Any, Any],
    n_samples: int | np.ndarray[Any, Any],
    full_threshold: float = DEFAULT_FULL_THRESHOLD,
) -> np.ndarray[Any, Any]:
    """Category codes (int8) of windows from their positive and total sample counts.

    The rule of `categorize_labels`, for counts kept from an earlier read of the labels.
    """
    n_pos = np.asarray(n_pos)
    codes = np.full(n_pos.shape[0], Category.NO_SEIZURE, dtype=np.int8)
    samples = np.broadcast_to(np.asarray(n_samples), n_pos.shape)
    known = samples > 0
    ratio = np.zeros(n_pos.shape[0], dtype=np.float64)
    np.divide(n_pos, samples, out=ratio, where=known)
    codes[ratio > 0] = Category.PARTIAL_SEIZURE
    codes[ratio >= full_threshold] = Category.FULL_SEIZURE
    return codes
