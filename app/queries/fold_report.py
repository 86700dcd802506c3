"""The numbers of every cross-validation fold: its test and training parts, and what the balanced
selection keeps of its training part.

The cost does not grow with k: one pass sums the rollups by patient and presence, a fold's test
part is the sum over its patients, and its training part is the snapshot's total minus its test
part. Each is the /stats answer of that subset (the training part is `exclude_patient` of the
fold's patients). The balanced selection of a training part with no missing recording follows
from its counts alone (seizure_stats.balance.kept_when_all_present); otherwise the snapshot's
category lists are read once and the selection is run on each fold's share of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import case, func, literal
from sqlalchemy.orm import Session

from app.models import Dataset, Recording, Snapshot
from app.queries.balanced import SubsetLists, load_subset_lists
from app.queries.folds import (
    Folds,
    Stratify,
    folds_from_counts,
    shared_fold_cache,
    sparse_class_warnings,
    stratified,
)
from app.queries.stats import make_counts, sample_counts, subset_warnings, window_weight
from app.queries.subset import Subset, added, answer_source, is_present, rollup_column
from seizure_stats.balance import kept_when_all_present, select_balanced
from seizure_stats.labels import Category
from seizure_stats.schemas.folds import (
    BalancedPart,
    Fold,
    FoldPart,
    FoldSpread,
    FoldsQuery,
    FoldsResponse,
    RatioRange,
)
from seizure_stats.schemas.questions import CATEGORY_NAMES, SubsetFilter

IntArray = np.ndarray[Any, np.dtype[np.int64]]
# The columns summed per patient and presence, in this order: windows, positive samples and
# samples of each category, then recordings with at least one window.
KINDS = ("windows", "pos", "samples")
COLUMNS = [(category, kind) for kind in KINDS for category in CATEGORY_NAMES]
RECORDINGS = len(COLUMNS)
WHOLE = SubsetFilter()


def fold_options(query: FoldsQuery) -> dict[str, Any]:
    """What a folds question asks beside its snapshot: what keys its answer, and what the answer
    repeats (the folds made are those of these k, seed and stratify)."""
    return query.model_dump(exclude={"snapshot"})


def compute_folds(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: FoldsQuery
) -> FoldsResponse:
    """Every fold of the snapshot with the exact numbers of its test and training parts."""
    rows = PatientRows.read(session, snapshot)
    folds = shared_fold_cache().get((snapshot.content_hash, query.k, query.seed, query.stratify))
    if folds is None:  # from the same sums, rather than a query of its own
        patients, counts = rows.class_counts(query.stratify)
        folds = folds_from_counts(snapshot, query.k, query.seed, query.stratify, patients, counts)
    fold_of = {patient: fold for fold, names in enumerate(folds.patients) for patient in names}
    sums = rows.fold_sums(fold_of, folds.k)
    total = sums.sum(axis=0)
    test_parts, train_parts = sums, total[np.newaxis] - sums
    balanced = balanced_parts(session, snapshot, folds, train_parts, query)

    warnings = sparse_class_warnings(folds)
    made = []
    for fold in range(folds.k):
        test = part_of(snapshot, test_parts[fold], query)
        train = part_of(snapshot, train_parts[fold], query)
        if balanced[fold] is None:
            warnings.append(
                f"fold_without_partial: fold {fold}: its training part has no partial_seizure "
                "window, so there is no balanced selection of it"
            )
        made.append(
            Fold(
                fold=fold,
                patients=list(folds.patients[fold]),
                test=test,
                train=train,
                balanced_train=balanced[fold],
            )
        )
    return FoldsResponse(
        **answer_source(dataset, snapshot),
        **fold_options(query),
        patients=len(fold_of),
        folds=made,
        spread=FoldSpread(
            test_seizure_ratio=spread_of([fold.test for fold in made]),
            train_seizure_ratio=spread_of([fold.train for fold in made]),
        ),
        warnings=warnings,
    )


class PatientRows:
    """The snapshot's rollups summed by patient and presence, in one query: each row's patient,
    whether its recordings are present, and its sums in the order of COLUMNS, then recordings
    with at least one window."""

    def __init__(self, patients: list[str], present: IntArray, values: IntArray) -> None:
        self.patients, self.present, self.values = patients, present, values

    @classmethod
    def read(cls, session: Session, snapshot: Snapshot) -> PatientRows:
        chosen = Subset.of(session, snapshot, WHOLE)
        windows = added(rollup_column(c, "windows") for c in CATEGORY_NAMES)
        present = is_present().label("present")
        # Without sample counts a snapshot's pos and samples say nothing: not summed (0 here).
        summed = [
            func.sum(rollup_column(category, kind))
            if kind == "windows" or snapshot.has_sample_counts
            else literal(0)
            for category, kind in COLUMNS
        ]
        query = chosen.rollups(
            Recording.patient,
            present,
            *summed,
            func.sum(case((windows > 0, 1), else_=0)),
        ).group_by(Recording.patient, present)
        # Through the connection: rows as tuples, without the ORM's per-row work; turned into
        # columns in one pass (slicing each row costs several times more at 35k rows).
        rows = session.connection().execute(query).all()
        if not rows:
            return cls([], np.zeros(0, dtype=np.int64), np.zeros((0, RECORDINGS + 1), np.int64))
        patients, presence, *sums = zip(*rows, strict=True)
        values = np.array(sums, dtype=np.int64).T
        return cls(list(patients), np.array(presence, dtype=bool).astype(np.int64), values)

    def class_counts(self, stratify: Stratify) -> tuple[list[str], IntArray]:
        """The patients with windows, in sorted order, and their class counts, present or not:
        what `patient_class_counts` reads, from these rows."""
        # numpy sorts an object array with Python's comparisons: the order of sorted().
        names, row_of = np.unique(np.array(self.patients, dtype=object), return_inverse=True)
        wanted = [_column(c, "windows") for c in ("full_seizure", "no_seizure", "partial_seizure")]
        counts = np.zeros((names.size, 3), dtype=np.int64)
        np.add.at(counts, row_of.reshape(-1), self.values[:, wanted])
        keep = counts.sum(axis=1) > 0
        return names[keep].tolist(), stratified(counts[keep], stratify)

    def fold_sums(self, fold_of: dict[str, int], k: int) -> IntArray:
        """A (k, 2, columns) table: each fold's sums over its patients' rows, [:, 0] for missing
        recordings and [:, 1] for present ones. A patient in no fold (no window) adds nothing."""
        folds = np.array([fold_of.get(name, -1) for name in self.patients], dtype=np.int64)
        in_a_fold = folds >= 0
        sums = np.zeros((k * 2, RECORDINGS + 1), dtype=np.int64)
        np.add.at(sums, folds[in_a_fold] * 2 + self.present[in_a_fold], self.values[in_a_fold])
        return sums.reshape(k, 2, RECORDINGS + 1)


def _column(category: str, kind: str) -> int:
    return COLUMNS.index((category, kind))


def windows_of(sums: IntArray) -> tuple[int, int, int]:
    """(partial, full, no_seizure) windows of one row of sums."""
    return (
        int(sums[_column("partial_seizure", "windows")]),
        int(sums[_column("full_seizure", "windows")]),
        int(sums[_column("no_seizure", "windows")]),
    )


def part_of(snapshot: Snapshot, sums: IntArray, query: FoldsQuery) -> FoldPart:
    """A part's stats answer from its (2, columns) sums, as compute_stats makes it."""
    missing, present = sums[0], sums[1]
    counts = make_counts(*windows_of(present))
    seizure_ratio, weight = window_weight(counts, query.weighting, query.beta)
    positive = sum(int(present[_column(c, "pos")]) for c in CATEGORY_NAMES)
    samples_total = sum(int(present[_column(c, "samples")]) for c in CATEGORY_NAMES)
    samples, sample_ratio = sample_counts(snapshot, positive, samples_total)
    missing_windows = sum(windows_of(missing))
    return FoldPart(
        counts=counts,
        samples=samples,
        seizure_ratio=seizure_ratio,
        sample_ratio=sample_ratio,
        pos_weight=weight,
        recordings=int(present[RECORDINGS]),
        missing_windows=missing_windows,
        missing_recordings=int(missing[RECORDINGS]),
        warnings=subset_warnings(counts, missing_windows),
    )


def balanced_parts(
    session: Session, snapshot: Snapshot, folds: Folds, train: IntArray, query: FoldsQuery
) -> list[BalancedPart | None]:
    """Each training part's balanced selection, the /balanced answer of `exclude_patient` of the
    fold's patients; None where it has no partial window."""
    kept: list[tuple[tuple[int, int, int], int] | None] = []
    lists: FoldLists | None = None
    for fold in range(folds.k):
        # The lists' lengths count missing recordings' entries too, as the selection does.
        partial, full, background = np.add(windows_of(train[fold, 0]), windows_of(train[fold, 1]))
        if partial == 0:
            kept.append(None)
        elif sum(windows_of(train[fold, 0])) == 0:
            counts = kept_when_all_present(
                int(partial),
                int(full),
                int(background),
                full_ratio=query.full_ratio,
                background_ratio=query.background_ratio,
            )
            kept.append((counts, 0))
        else:
            if lists is None:
                lists = FoldLists.load(session, snapshot, folds)
            kept.append(lists.select(fold, query))
    return [None if k is None else balanced_part(*k, query) for k in kept]


def balanced_part(kept: tuple[int, int, int], skipped: int, query: FoldsQuery) -> BalancedPart:
    """The kept counts as compute_balanced reports them."""
    counts = make_counts(*kept)
    seizure_ratio, weight = window_weight(counts, query.weighting, query.beta)
    return BalancedPart(
        counts=counts,
        seizure_ratio=seizure_ratio,
        pos_weight=weight,
        missing_skipped=skipped,
        warnings=subset_warnings(counts, skipped),
    )


class FoldLists:
    """The snapshot's category lists, read once, and each entry's test fold."""

    def __init__(self, lists: SubsetLists, fold_of_recording: IntArray) -> None:
        self.lists = lists
        self.fold_of_recording = fold_of_recording

    @classmethod
    def load(cls, session: Session, snapshot: Snapshot, folds: Folds) -> FoldLists:
        lists = load_subset_lists(session, snapshot, WHOLE, with_names=False)
        fold_of = {patient: fold for fold, names in enumerate(folds.patients) for patient in names}
        recordings = Subset.of(session, snapshot, WHOLE).rollups(Recording.id, Recording.patient)
        rows = session.execute(recordings).all()
        # The lists' masks reach past the largest id the lists hold, not necessarily past every
        # recording of the snapshot (one with no window in any list would lie beyond).
        size = max([lists.present.size, *(row.id + 1 for row in rows)])
        fold_of_recording = np.full(size, -1, dtype=np.int64)
        for row in rows:
            fold_of_recording[row.id] = fold_of.get(row.patient, -1)
        return cls(lists, fold_of_recording)

    def select(self, fold: int, query: FoldsQuery) -> tuple[tuple[int, int, int], int]:
        """The kept counts and skipped entries of the selection over the fold's training part:
        each list without the fold's entries, in manifest order."""
        flags = []
        for category in Category:
            ids = self.lists.lists[category].recording_ids
            training = ids[self.fold_of_recording[ids] != fold]
            flags.append(self.lists.present[training])
        selection = select_balanced(
            *flags,
            full_ratio=query.full_ratio,
            background_ratio=query.background_ratio,
            seed=query.balanced_seed,
        )
        return selection.kept_per_category, selection.missing_skipped


def spread_of(parts: list[FoldPart]) -> RatioRange:
    ratios = [part.seizure_ratio for part in parts]
    return RatioRange(min=min(ratios), max=max(ratios))
