"""The distribution of per-window seizure fraction (n_pos / n_samples) over a subset.

Only snapshots scanned from the label arrays (or imported from a manifest carrying n_pos and
n_samples) know it. Bins are computed in integer arithmetic inside the database, so a window
whose fraction sits exactly on an edge always lands in the same bin: [lower, upper).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session

from app.errors import InvalidRequestError
from app.filters import recording_clause
from app.labels import Category
from app.models import Dataset, Recording, Snapshot, Window
from app.report_schemas import HistogramBin, HistogramQuery, HistogramResponse

ZERO_BIN = -1


def compute_histogram(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: HistogramQuery
) -> HistogramResponse:
    """Window counts of the subset by seizure fraction; 422 when the snapshot lacks n_pos."""
    if not snapshot.has_sample_counts:
        raise InvalidRequestError(
            f"snapshot {snapshot.id} of dataset {dataset.name!r} has no per-window sample counts "
            "(it was imported from a manifest without n_pos and n_samples), so the seizure "
            "fraction of its windows is unknown; scan the cache (seizure-stats scan) to get them"
        )
    bins = query.bins
    dialect = session.get_bind().dialect.name
    scaled = cast(Window.n_pos, BigInteger) * bins
    bin_index = case(
        (Window.n_pos <= 0, ZERO_BIN),
        (Window.n_pos >= Window.n_samples, bins - 1),
        else_=scaled // Window.n_samples,
    ).label("bin")
    present = func.coalesce(Recording.present, True).label("present")
    codes = [int(Category.from_key(c)) for c in query.selected_categories()]
    windows = (
        select(present, bin_index)
        .select_from(Window)
        .join(Recording, Recording.id == Window.recording_id)
        .where(Window.snapshot_id == snapshot.id, Window.category.in_(codes))
        .where(recording_clause(query, dialect))
        .subquery("binned")
    )
    # Grouped outside, by the subquery's columns: Postgres cannot match a GROUP BY expression
    # to the SELECT one when each carries its own bound parameters.
    rows = session.execute(
        select(windows.c.present, windows.c.bin, func.count()).group_by(
            windows.c.present, windows.c.bin
        )
    )
    counts = [0] * bins
    zero = missing = 0
    for is_present, index, windows in rows:
        if not is_present:
            missing += int(windows)
        elif index == ZERO_BIN:
            zero += int(windows)
        else:
            counts[int(index)] += int(windows)
    return HistogramResponse(
        dataset=dataset.name,
        snapshot=snapshot.id,
        content_hash=snapshot.content_hash,
        zero=zero,
        bins=[
            HistogramBin(lower=i / bins, upper=(i + 1) / bins, count=count)
            for i, count in enumerate(counts)
        ],
        total=zero + sum(counts),
        missing_windows=missing,
    )
