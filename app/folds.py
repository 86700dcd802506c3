"""Patient-level cross-validation folds: exactly those of scikit-learn's StratifiedGroupKFold.

Pure arithmetic on counts. `StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)`
assigns whole groups to folds greedily, and what it looks at is only each group's count of
every class: given those counts (groups in sorted name order, classes in sorted label order,
which is how it sees them), `assign_folds` returns the test fold of every group. Folds are thus
computed from per-patient counts summed in the database, never from window rows.

The greedy step scores every fold a group could join by the spread of the class shares across
folds. Near-ties are broken by a tolerance and then by fold size, so a result one rounding apart
could pick another fold: every floating-point operation here is the one scikit-learn performs,
in the same order. Only the scoring of the candidate folds is batched, each step of it one
numpy call over all candidates (FoldScorer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# numpy's RandomState takes 32-bit seeds.
MAX_FOLD_SEED = 2**32 - 1
# The tolerance of numpy.isclose, with which two fold scores count as a tie.
TIE_RELATIVE = 1e-05
TIE_ABSOLUTE = 1e-08

IntArray = np.ndarray[Any, np.dtype[np.int64]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class FoldAssignment:
    """Each group's test fold (in the order the groups were given), and what sklearn warns of."""

    fold_of_group: IntArray
    warnings: list[str]


class FoldError(ValueError):
    """The folds asked for cannot be made from these counts."""


def assign_folds(class_counts: Any, n_splits: int, seed: int) -> FoldAssignment:
    """The test fold of every group, as StratifiedGroupKFold(shuffle=True) assigns them.

    `class_counts` is a (groups, classes) array of window counts: rows in sorted group name
    order, columns in sorted class label order. A class no window has is ignored, as sklearn
    never sees it; every group must have at least one window.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    if counts.ndim != 2:
        raise FoldError("class counts must be a (groups, classes) table")
    if n_splits < 2:
        raise FoldError(f"k must be at least 2, got {n_splits}")
    if not 0 <= seed <= MAX_FOLD_SEED:
        raise FoldError(f"seed must be between 0 and {MAX_FOLD_SEED}, got {seed}")
    if (counts < 0).any() or (counts.sum(axis=1) == 0).any():
        raise FoldError("every group must have at least one window, and no count is negative")
    counts = counts[:, counts.sum(axis=0) > 0]
    class_sizes = counts.sum(axis=0)
    n_groups = counts.shape[0]
    if np.all(n_splits > class_sizes):
        raise FoldError(f"k={n_splits} is greater than the number of windows of every class")
    if n_splits > n_groups:
        raise FoldError(f"k={n_splits} is greater than the number of patients ({n_groups})")
    warnings = []
    if n_splits > class_sizes.min():
        fewest = int(class_sizes.min())
        warnings.append(
            f"the least populated class has only {fewest} window{'' if fewest == 1 else 's'}, "
            f"fewer than k={n_splits}: some folds have none of it"
        )

    # sklearn shuffles the groups, then visits them by decreasing spread of their class
    # counts; the stable sort keeps the shuffled order among groups of equal spread.
    order = np.arange(n_groups)
    np.random.RandomState(seed).shuffle(order)
    shuffled = counts.astype(np.float64)[order]
    visit = np.argsort(-np.std(shuffled, axis=1), kind="stable")

    scorer = FoldScorer(n_splits, class_sizes)
    # Each group's counts repeated once per candidate fold, in visiting order, made in one go.
    repeated = np.tile(shuffled[visit], (1, n_splits))
    by_fold = repeated.reshape(n_groups, n_splits, -1)
    chosen = [scorer.join_best(*group) for group in zip(repeated, by_fold, strict=True)]
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order[visit]] = chosen
    return FoldAssignment(fold_of_group, warnings)


class FoldScorer:
    """The folds' class counts so far, and the choice of the fold each next group joins.

    For each candidate fold i, the fold counts as they would be with the group added to fold i
    are the block `i` of a (fold, candidate * class) table: fold i's row gets the group in that
    block. The score of every candidate is then numpy.std and numpy.mean as sklearn calls them
    on its (fold, class) table: sum over folds (axis 0, in fold order, as there), divide,
    subtract, square, sum, divide, root, then the mean over classes. Same operations on the
    same values in the same order, so the same bits; laid out so that every step is one numpy
    call on a flat table, on buffers made once: about 15 microseconds a group instead of 100.
    """

    def __init__(self, n_splits: int, class_sizes: IntArray) -> None:
        n_classes = class_sizes.shape[0]
        width = n_splits * n_classes
        # The fold counts so far, repeated for every candidate: row k is fold k.
        self.counts = np.zeros((n_splits, width))
        self._fold_rows = list(self.counts)
        self._candidates = np.empty((n_splits, width))
        self._shares = np.empty((n_splits, width))
        # Fold i's row in candidate block i: row i, columns i * classes onwards.
        self._joined = np.lib.stride_tricks.as_strided(
            self._candidates, shape=(n_splits, n_classes), strides=((width + n_classes) * 8, 8)
        )
        self._class_sizes = np.tile(class_sizes.astype(np.float64), (n_splits, n_splits))
        self._n_folds = np.full((1, width), float(n_splits))
        self._n_classes = np.full(n_splits, float(n_classes))
        self._mean = np.empty((1, width))
        self._spread = np.empty((1, width))
        self._spread_by_class = self._spread.reshape(n_splits, n_classes)
        self._scores = np.empty(n_splits)
        self.n_splits, self.n_classes = n_splits, n_classes

    def join_best(self, repeated_group: FloatArray, group_by_fold: FloatArray) -> int:
        """Add the group (its class counts repeated once per fold: flat, and as a (fold, class)
        view) to the fold whose joining leaves the class shares least spread across folds; on a
        tie (within isclose's tolerance) the fold with fewer windows; then the first. Returns
        that fold."""
        np.copyto(self._candidates, self.counts)
        np.add(self._joined, group_by_fold, out=self._joined)
        shares, mean, spread = self._shares, self._mean, self._spread
        np.divide(self._candidates, self._class_sizes, out=shares)
        np.add.reduce(shares, axis=0, keepdims=True, out=mean)
        np.true_divide(mean, self._n_folds, out=mean)
        np.subtract(shares, mean, out=shares)
        np.multiply(shares, shares, out=shares)
        np.add.reduce(shares, axis=0, keepdims=True, out=spread)
        np.true_divide(spread, self._n_folds, out=spread)
        np.sqrt(spread, out=spread)
        np.add.reduce(self._spread_by_class, axis=1, out=self._scores)
        np.true_divide(self._scores, self._n_classes, out=self._scores)
        scores: list[float] = self._scores.tolist()
        lowest = min(scores)
        best = scores.index(lowest)
        # Usually no other fold scores within the tolerance of the lowest: then, compared in
        # turn with the best so far, the first lowest wins every comparison.
        if sorted(scores)[1] - lowest <= TIE_ABSOLUTE + TIE_RELATIVE * abs(lowest):
            best = self._first_best(scores)
        row = self._fold_rows[best]
        np.add(row, repeated_group, out=row)
        return best

    def fold_sizes(self) -> list[float]:
        """Each fold's windows so far (numpy.sum of its class counts)."""
        first_block = self.counts[:, : self.n_classes]
        return np.add.reduce(first_block, axis=1).tolist()  # type: ignore[no-any-return]

    def _first_best(self, scores: list[float]) -> int:
        """The fold sklearn keeps, comparing each in turn with the best so far."""
        best, best_score, best_size = 0, float("inf"), float("inf")
        for fold, (score, size) in enumerate(zip(scores, self.fold_sizes(), strict=True)):
            tie = best_score != float("inf") and abs(score - best_score) <= (
                TIE_ABSOLUTE + TIE_RELATIVE * abs(best_score)
            )
            if score < best_score or (tie and size < best_size):
                best, best_score, best_size = fold, score, size
        return best
