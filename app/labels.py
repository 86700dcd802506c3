"""Pure arithmetic: window categories, ratios and pos_weight schemes (docs/design.md semantics)."""

from __future__ import annotations

import math
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np

DEFAULT_FULL_THRESHOLD = 0.99
DEFAULT_BETA = 0.9999
LOW_RATIO_WARNING_BELOW = 0.001
STALE_WARNING_ABOVE = 0.05


class Category(IntEnum):
    """Stored codes; the order is the manifest's key order."""

    PARTIAL_SEIZURE = 0
    FULL_SEIZURE = 1
    NO_SEIZURE = 2

    @property
    def key(self) -> str:
        return self.name.lower()

    @classmethod
    def from_key(cls, key: str) -> Category:
        return cls[key.upper()]


CATEGORY_KEYS: tuple[str, ...] = tuple(c.key for c in Category)


class Weighting(StrEnum):
    SQRT = "sqrt"
    LINEAR = "linear"
    EFFECTIVE = "effective"
    NONE = "none"


class Basis(StrEnum):
    WINDOW = "window"
    SAMPLE = "sample"


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


def ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, or 0.0 for an empty denominator."""
    return numerator / denominator if denominator else 0.0


def pos_weight(
    p: float,
    weighting: Weighting = Weighting.SQRT,
    *,
    n_positive: int = 0,
    n_negative: int = 0,
    beta: float = DEFAULT_BETA,
) -> float:
    """pos_weight for positive ratio p; `effective` uses the class sizes instead of p."""
    if weighting is Weighting.SQRT:
        return math.sqrt((1 - p) / p) if 0 < p < 0.5 else 1.0
    if weighting is Weighting.LINEAR:
        return (1 - p) / p if 0 < p < 1 else 1.0
    if weighting is Weighting.EFFECTIVE:
        return effective_pos_weight(n_positive, n_negative, beta)
    return 1.0


def effective_pos_weight(n_positive: int, n_negative: int, beta: float = DEFAULT_BETA) -> float:
    """Class-balanced weight ratio from the effective number of samples (Cui et al., 2019)."""
    if n_positive <= 0 or n_negative <= 0:
        return 1.0
    w_pos = (1 - beta) / (1 - beta**n_positive)
    w_neg = (1 - beta) / (1 - beta**n_negative)
    return w_pos / w_neg
