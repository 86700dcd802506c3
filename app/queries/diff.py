"""What changed between two snapshots of a dataset, window by window.

A window is `(recording, window_idx)`; a manifest holds each at most once. The two snapshots'
windows are matched in the database, in one pass and without an index beyond the primary key
(an extra index would slow every bulk import): Postgres hash-joins them with a FULL JOIN;
SQLite, which has no hash join, groups both snapshots' rows by window instead. Either way the
database returns only the changes, already counted per recording and (old, new) category.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from app.models import Dataset, Recording, RecordingRollup, Snapshot, Window
from app.queries.subset import added, rollup_column
from seizure_stats.labels import Category
from seizure_stats.schemas.questions import CATEGORY_NAMES, CategoryName
from seizure_stats.schemas.reports import (
    CategoryChange,
    CategoryMove,
    RecordingChange,
    SnapshotDiff,
)

DEFAULT_RECORDING_LIMIT = 1000


def diff_snapshots(
    session: Session,
    dataset: Dataset,
    a: Snapshot,
    b: Snapshot,
    *,
    recording_limit: int = DEFAULT_RECORDING_LIMIT,
) -> SnapshotDiff:
    """Windows added in b, removed from a, and whose category changed, in total and by part."""
    dialect = session.get_bind().dialect.name
    changes = _changes_query(a.id, b.id, dialect)
    added = dict.fromkeys(CATEGORY_NAMES, 0)
    removed = dict.fromkeys(CATEGORY_NAMES, 0)
    moves: dict[tuple[str, str], int] = defaultdict(int)
    per_recording: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    # These rows are already counted by the database; what follows only adds up a few of them.
    for recording_id, before, after, windows in session.execute(changes):
        count = int(windows)
        if before is None:
            added[Category(after).key] += count
            per_recording[recording_id][0] += count
        elif after is None:
            removed[Category(before).key] += count
            per_recording[recording_id][1] += count
        else:
            moves[Category(before).key, Category(after).key] += count
            per_recording[recording_id][2] += count

    counts_a = _snapshot_counts(a)
    counts_b = _snapshot_counts(b)
    categories = [
        CategoryChange(
            category=_name(c),
            a=counts_a[c],
            b=counts_b[c],
            added=added[c],
            removed=removed[c],
            changed_in=sum(n for (old, new), n in moves.items() if new == c),
            changed_out=sum(n for (old, new), n in moves.items() if old == c),
        )
        for c in CATEGORY_NAMES
    ]
    changed = sum(moves.values())
    recordings = _recording_changes(session, dataset, a, b, per_recording, recording_limit)
    return SnapshotDiff(
        dataset=dataset.name,
        a=a.id,
        b=b.id,
        a_content_hash=a.content_hash,
        b_content_hash=b.content_hash,
        added=sum(added.values()),
        removed=sum(removed.values()),
        changed=changed,
        unchanged=sum(counts_a.values()) - sum(removed.values()) - changed,
        categories=categories,
        moves=[
            CategoryMove(from_category=_name(old), to_category=_name(new), windows=n)
            for (old, new), n in sorted(moves.items(), key=lambda item: _move_order(*item[0]))
        ],
        recordings=recordings,
        recordings_total=len(per_recording),
        truncated=len(per_recording) > len(recordings),
    )


def _changes_query(a_id: int, b_id: int, dialect: str) -> Select[Any]:
    """(recording_id, category in a or NULL, category in b or NULL, windows) of every change."""
    if dialect == "postgresql":
        columns = (Window.recording_id, Window.window_idx, Window.category)
        old = select(*columns).where(Window.snapshot_id == a_id).subquery("old")
        new = select(*columns).where(Window.snapshot_id == b_id).subquery("new")
        recording = func.coalesce(old.c.recording_id, new.c.recording_id).label("recording_id")
        joined = old.join(
            new,
            and_(
                old.c.recording_id == new.c.recording_id,
                old.c.window_idx == new.c.window_idx,
            ),
            full=True,
        )
        before, after = old.c.category, new.c.category
        return (
            select(recording, before, after, func.count())
            .select_from(joined)
            .where(or_(before.is_(None), after.is_(None), before != after))
            .group_by(recording, before, after)
        )
    windows = (
        select(
            Window.recording_id,
            func.max(case((Window.snapshot_id == a_id, Window.category))).label("before"),
            func.max(case((Window.snapshot_id == b_id, Window.category))).label("after"),
        )
        .where(Window.snapshot_id.in_([a_id, b_id]))
        .group_by(Window.recording_id, Window.window_idx)
        .subquery("paired")
    )
    before, after = windows.c.before, windows.c.after
    return (
        select(windows.c.recording_id, before, after, func.count())
        .where(or_(before.is_(None), after.is_(None), before != after))
        .group_by(windows.c.recording_id, before, after)
    )


def _snapshot_counts(snapshot: Snapshot) -> dict[str, int]:
    return {
        "partial_seizure": snapshot.partial_windows,
        "full_seizure": snapshot.full_windows,
        "no_seizure": snapshot.no_seizure_windows,
    }


def _move_order(old: str, new: str) -> tuple[int, int]:
    return CATEGORY_NAMES.index(old), CATEGORY_NAMES.index(new)


def _name(category: str) -> CategoryName:
    return typing.cast(CategoryName, category)


def _recording_changes(
    session: Session,
    dataset: Dataset,
    a: Snapshot,
    b: Snapshot,
    per_recording: dict[int, list[int]],
    limit: int,
) -> list[RecordingChange]:
    """The changed recordings by name, cut at `limit`, with their window totals in a and b."""
    if not per_recording:
        return []
    # Whole-dataset lookups (one row per recording) rather than IN lists that could outgrow
    # the driver's parameter limit when a snapshot replaced thousands of recordings.
    names: dict[int, str] = dict(
        session.execute(
            select(Recording.id, Recording.cache_file).where(Recording.dataset_id == dataset.id)
        ).all()
    )
    chosen = sorted(per_recording, key=lambda rec_id: names[rec_id])[:limit]
    r = RecordingRollup
    windows = added(rollup_column(c, "windows") for c in CATEGORY_NAMES)
    totals: dict[tuple[int, int], int] = {
        (snapshot_id, recording_id): int(total)
        for snapshot_id, recording_id, total in session.execute(
            select(r.snapshot_id, r.recording_id, windows).where(r.snapshot_id.in_([a.id, b.id]))
        )
    }
    return [
        RecordingChange(
            recording=names[rec_id],
            windows_a=totals.get((a.id, rec_id), 0),
            windows_b=totals.get((b.id, rec_id), 0),
            added=per_recording[rec_id][0],
            removed=per_recording[rec_id][1],
            changed=per_recording[rec_id][2],
        )
        for rec_id in chosen
    ]
