"""Pure arithmetic: window categories, ratios and pos_weight schemes (docs/design.md semantics).

Plain Python, so that a training job has it without numpy."""

from __future__ import annotations

import math
from enum import IntEnum, StrEnum

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
