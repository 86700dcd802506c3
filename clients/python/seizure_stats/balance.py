"""Pure balanced selection, in step with the existing balanced training dataset (docs/design.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seizure_stats.numpy_extra import numpy_missing

try:
    import numpy as np
except ModuleNotFoundError as missing:
    raise numpy_missing("seizure_stats.balance") from missing

DEFAULT_FULL_RATIO = 0.3
DEFAULT_BACKGROUND_RATIO = 2.5
DEFAULT_SEED = 42

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


class NothingToBalanceError(ValueError):
    """The subset has no partial-seizure windows, so there is nothing to balance around."""


@dataclass(frozen=True)
class BalancedSelection:
    """What was kept, as (category code, position in that category's list), in dataset order."""

    categories: np.ndarray[Any, np.dtype[np.int8]]
    positions: IntArray
    kept_per_category: tuple[int, int, int]
    missing_skipped: int

    @property
    def total(self) -> int:
        return int(self.positions.size)


def select_balanced(
    partial_present: BoolArray,
    full_present: BoolArray,
    background_present: BoolArray,
    *,
    full_ratio: float = DEFAULT_FULL_RATIO,
    background_ratio: float = DEFAULT_BACKGROUND_RATIO,
    seed: int = DEFAULT_SEED,
) -> BalancedSelection:
    """Run the balanced selection over three category lists given as per-entry presence flags.

    Each array holds, in manifest order, whether that entry's recording is present; its length
    is the list's length with missing entries included, as the algorithm requires.
    """
    n_partial = int(partial_present.size)
    if n_partial == 0:
        raise NothingToBalanceError("the subset has no partial_seizure windows to balance around")
    rng = np.random.default_rng(seed)

    kept_partial = np.flatnonzero(partial_present)
    kept_full = _pick_present(rng, full_present, int(full_ratio * n_partial))
    kept_background = _pick_present(rng, background_present, int(background_ratio * n_partial))

    categories = np.concatenate(
        [
            np.zeros(kept_partial.size, dtype=np.int8),
            np.ones(kept_full.size, dtype=np.int8),
            np.full(kept_background.size, 2, dtype=np.int8),
        ]
    )
    positions = np.concatenate([kept_partial, kept_full, kept_background]).astype(np.int64)
    order = np.arange(positions.size)
    rng.shuffle(order)

    considered = n_partial + _considered(full_present, full_ratio, n_partial)
    considered += _considered(background_present, background_ratio, n_partial)
    return BalancedSelection(
        categories=categories[order],
        positions=positions[order],
        kept_per_category=(int(kept_partial.size), int(kept_full.size), int(kept_background.size)),
        missing_skipped=considered - int(positions.size),
    )


def _pick_present(rng: np.random.Generator, present: BoolArray, want: int) -> IntArray:
    """Draw min(want, len) distinct entries in draw order, then drop those not present."""
    if present.size == 0 or want <= 0:
        return np.empty(0, dtype=np.int64)
    picks = rng.choice(present.size, size=min(want, int(present.size)), replace=False)
    return np.asarray(picks[present[picks]], dtype=np.int64)


def _considered(present: BoolArray, ratio: float, n_partial: int) -> int:
    """How many entries of a list the selection looked at (kept or skipped as missing)."""
    want = int(ratio * n_partial)
    return min(want, int(present.size)) if present.size and want > 0 else 0


def kept_when_all_present(
    n_partial: int,
    n_full: int,
    n_background: int,
    *,
    full_ratio: float = DEFAULT_FULL_RATIO,
    background_ratio: float = DEFAULT_BACKGROUND_RATIO,
) -> tuple[int, int, int]:
    """What `select_balanced` keeps of each list when every entry's recording is present.

    Every partial entry is kept; a draw of `min(want, len)` distinct entries keeps all it draws,
    so which entries the seed picks changes nothing of the counts. No list is read, and nothing
    is skipped as missing.
    """
    if n_partial == 0:
        raise NothingToBalanceError("the subset has no partial_seizure windows to balance around")
    want_full, want_background = int(full_ratio * n_partial), int(background_ratio * n_partial)
    return (
        n_partial,
        min(want_full, n_full) if n_full and want_full > 0 else 0,
        min(want_background, n_background) if n_background and want_background > 0 else 0,
    )
