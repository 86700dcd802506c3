"""Patient-level cross-validation folds: exactly those of scikit-learn's StratifiedGroupKFold.

Pure arithmetic on counts. `StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)`
assigns whole groups to folds greedily, and what it looks at is only each group's count of
every class: given those counts (groups in sorted name order, classes in sorted label order,
which is how it sees them), `assign_folds` returns the test fold of every group. Folds are thus
computed from per-patient counts summed in the database, never from window rows.

The greedy step scores every fold a group could join by the spread of the class shares across
folds. Near-ties are broken by a tolerance and then by fold size, so a result one rounding apart
could pick another fold: every floating-point operation here is the one scikit-learn performs,
in the same order. Only the scoring of the candidate folds is batched into one array operation.
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
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    for position in visit:
        fold_of_group[order[position]] = scorer.join_best(shuffled[position])
    return FoldAssignment(fold_of_group, warnings)


class FoldScorer:
    """The folds' class counts so far, and the choice of the fold each next group joins.

    The candidates' scores are computed as numpy.std and numpy.mean compute them (sum, divide,
    subtract, square, sum, divide, root: the same reductions over the same axes), on buffers
    made once: a call costs a few microseconds instead of a hundred.
    """

    def __init__(self, n_splits: int, class_sizes: IntArray) -> None:
        n_classes = class_sizes.shape[0]
        self.n_splits = n_splits
        self.class_sizes = class_sizes.reshape(1, -1)
        self.fold_counts = np.zeros((n_splits, n_classes))
        # Candidate i: the fold counts as they would be with the group added to fold i.
        self.candidates = np.empty((n_splits, n_splits, n_classes))
        self.shares = np.empty_like(self.candidates)
        # The candidates' own fold rows, i * (n_splits + 1) in the flattened candidates.
        self.diagonal = self.candidates.reshape(n_splits * n_splits, n_classes)[:: n_splits + 1]

    def join_best(self, group: FloatArray) -> int:
        """Add the group to the fold whose joining leaves the class shares least spread across
        folds; on a tie (within isclose's tolerance) the fold with fewer windows; then the
        first. Returns that fold."""
        np.copyto(self.candidates, self.fold_counts)
        self.diagonal += group
        np.divide(self.candidates, self.class_sizes, out=self.shares)
        spread = _std_over_folds(self.shares)
        # numpy.mean over the classes, and numpy.sum of each fold's windows.
        scores: list[float] = np.true_divide(
            np.add.reduce(spread, axis=1), spread.shape[1]
        ).tolist()
        lowest = min(scores)
        best = scores.index(lowest)
        # Usually no other fold scores within the tolerance of the lowest: then, compared in
        # turn with the best so far, the first lowest wins every comparison.
        if sorted(scores)[1] - lowest <= TIE_ABSOLUTE + TIE_RELATIVE * abs(lowest):
            best = self._first_best(scores)
        self.fold_counts[best] += group
        return best

    def _first_best(self, scores: list[float]) -> int:
        """The fold sklearn keeps, comparing each in turn with the best so far."""
        sizes = np.add.reduce(self.fold_counts, axis=1).tolist()
        best, best_score, best_size = 0, float("inf"), float("inf")
        for fold, (score, size) in enumerate(zip(scores, sizes, strict=True)):
            tie = best_score != float("inf") and abs(score - best_score) <= (
                TIE_ABSOLUTE + TIE_RELATIVE * abs(best_score)
            )
            if score < best_score or (tie and size < best_size):
                best, best_score, best_size = fold, score, size
        return best


def _std_over_folds(shares: FloatArray) -> FloatArray:
    """numpy.std(shares, axis=1), step by step as numpy computes it, in place."""
    n = shares.shape[1]
    mean = np.add.reduce(shares, axis=1, keepdims=True)
    np.true_divide(mean, n, out=mean)
    np.subtract(shares, mean, out=shares)
    np.multiply(shares, shares, out=shares)
    variance: FloatArray = np.add.reduce(shares, axis=1)
    np.true_divide(variance, n, out=variance)
    np.sqrt(variance, out=variance)
    return variance
