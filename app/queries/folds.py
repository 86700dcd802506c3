"""A snapshot's patients split into cross-validation folds (app.folds), from counts summed here,
and the narrowing the fold filters (`fold`, `exclude_fold`) make of a subset.

The assignment depends on the snapshot alone: every window of the snapshot counts, whether its
recording is present or not, so folds stay put when files go missing. It is kept per process,
keyed by (content hash, k, seed, stratify): the content hash covers every recording name and
window of the snapshot, so equal hashes mean equal folds, in whatever database they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import and_, func, not_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.errors import InvalidRequestError
from app.folds import FoldError, assign_folds
from app.lru import LruCache
from app.models import Recording, RecordingRollup, Snapshot
from app.queries.filters import in_values
from seizure_stats.schemas.filters import FOLD_FILTERS, FOLD_SETTINGS, SubsetFilter
from seizure_stats.schemas.fold_values import StratifyChoice, parse_fold

Stratify = StratifyChoice
FoldKey = tuple[str, int, int, str]


@dataclass(frozen=True)
class Folds:
    """The patients of each test fold (sorted), and what scikit-learn would warn of."""

    k: int
    seed: int
    stratify: Stratify
    patients: tuple[tuple[str, ...], ...]
    warnings: tuple[str, ...]

    def test_patients(self, fold: int) -> tuple[str, ...]:
        if not 0 <= fold < self.k:
            raise InvalidRequestError(
                f"fold {fold} is out of range for k={self.k}: 0 to {self.k - 1}"
            )
        return self.patients[fold]


def sparse_class_warnings(folds: Folds) -> list[str]:
    """What scikit-learn warns of these folds, as answers' warnings: each with its code."""
    return [f"fold_sparse_class: {warning}" for warning in folds.warnings]


class FoldCache(LruCache[FoldKey, Folds]):
    """Fold assignments kept per process: one is about 60 bytes per patient."""

    def __init__(self, max_entries: int = 64) -> None:
        super().__init__(max_entries)


@cache
def shared_fold_cache() -> FoldCache:
    """The process's fold assignments, made on first use: every question with folds shares it."""
    return FoldCache()


def patient_class_counts(
    session: Session, snapshot: Snapshot, stratify: Stratify
) -> tuple[list[str], np.ndarray]:
    """Every patient of the snapshot with windows, in sorted order, and their window count per
    class, the classes in sorted label order: the category names, or False/True for
    no seizure/seizure. That is the order scikit-learn sees groups and labels in."""
    rollup = RecordingRollup
    rows = session.execute(
        select(
            Recording.patient,
            func.sum(rollup.full_windows),
            func.sum(rollup.no_seizure_windows),
            func.sum(rollup.partial_windows),
        )
        .join(Recording, Recording.id == rollup.recording_id)
        .where(rollup.snapshot_id == snapshot.id)
        .group_by(Recording.patient)
    ).all()
    return class_counts_of(rows, stratify)


def class_counts_of(
    rows: Iterable[Sequence[Any]], stratify: Stratify
) -> tuple[list[str], np.ndarray]:
    """The patients and class counts of `patient_class_counts` from rows of (patient, full,
    no_seizure, partial) windows, one row a patient, in any order."""
    # Sorted here, not by the database: its collation need not order names as numpy does.
    rows = sorted((row for row in rows if sum(row[1:]) > 0), key=lambda row: row[0])
    counts = np.array([row[1:] for row in rows], dtype=np.int64).reshape(len(rows), 3)
    return [row[0] for row in rows], stratified(counts, stratify)


def stratified(counts: np.ndarray, stratify: Stratify) -> np.ndarray:
    """(full, no_seizure, partial) counts as the classes of `stratify`, in sorted label order."""
    if stratify == "seizure":  # False (no seizure), True (partial or full)
        return np.stack([counts[:, 1], counts[:, 0] + counts[:, 2]], axis=1)
    return counts


def snapshot_folds(
    session: Session,
    snapshot: Snapshot,
    k: int,
    seed: int,
    stratify: Stratify = "category",
    cache: FoldCache | None = None,
) -> Folds:
    """The snapshot's patients in k folds; 422 naming the problem when they cannot be made."""
    cache = shared_fold_cache() if cache is None else cache
    known = cache.get((snapshot.content_hash, k, seed, stratify))
    if known is not None:
        return known
    patients, counts = patient_class_counts(session, snapshot, stratify)
    return folds_from_counts(snapshot, k, seed, stratify, patients, counts, cache)


def folds_from_counts(
    snapshot: Snapshot,
    k: int,
    seed: int,
    stratify: Stratify,
    patients: list[str],
    counts: np.ndarray,
    cache: FoldCache | None = None,
) -> Folds:
    """The folds of `patient_class_counts`' patients and counts, kept in the cache: for a caller
    that summed those counts with others in its own query."""
    cache = shared_fold_cache() if cache is None else cache
    key = (snapshot.content_hash, k, seed, stratify)
    try:
        assignment = assign_folds(counts, k, seed)
    except FoldError as exc:
        raise InvalidRequestError(str(exc)) from None
    names = np.array(patients, dtype=object)
    folds = Folds(
        k,
        seed,
        stratify,
        tuple(tuple(names[assignment.fold_of_group == fold]) for fold in range(k)),
        tuple(assignment.warnings),
    )
    cache.put(key, folds)
    return folds


@dataclass(frozen=True)
class FoldNarrowing:
    """The patients the fold filters keep (None: no `fold`) and leave out, and the warnings of
    the folds they used."""

    keep: tuple[str, ...] | None = None
    leave_out: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def clause(self, dialect: str) -> ColumnElement[bool]:
        """`patient IN (kept)` and `patient NOT IN (left out)`, each one bound list however
        long: the training part of a split is the rest of the snapshot, so it is written as
        NOT IN its test fold, the shorter list."""
        clauses = []
        if self.keep is not None:
            clauses.append(in_values(Recording.patient, self.keep, dialect))
        if self.leave_out:
            clauses.append(not_(in_values(Recording.patient, self.leave_out, dialect)))
        return and_(true(), *clauses)


NO_FOLDS = FoldNarrowing()


def fold_narrowing(session: Session, snapshot: Snapshot, subset: SubsetFilter) -> FoldNarrowing:
    """The patients of the test folds `fold` names (their union), and of those `exclude_fold`
    names; a 422 naming the filter when the snapshot cannot be split so."""
    if not subset.has_folds():
        return NO_FOLDS
    seed, stratify = (subset.fold_setting(spec) for spec in FOLD_SETTINGS)
    chosen: dict[bool, set[str]] = {}
    warnings: list[str] = []
    for spec in FOLD_FILTERS:
        # Each fold once, however often it is named.
        for value in sorted(set(subset.values_of(spec))):
            index, k = parse_fold(value)
            try:
                folds = snapshot_folds(session, snapshot, k, seed, stratify)
                patients = folds.test_patients(index)
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"{spec.name}={value}: {exc.detail}") from None
            chosen.setdefault(spec.exclude, set()).update(patients)
            warnings += sparse_class_warnings(folds)
    keep = chosen.get(False)
    return FoldNarrowing(
        None if keep is None else tuple(sorted(keep)),
        tuple(sorted(chosen.get(True, ()))),
        tuple(dict.fromkeys(warnings)),
    )
