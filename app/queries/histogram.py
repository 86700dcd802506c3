"""The distribution of per-window seizure fraction (n_pos / n_samples) over a subset.

Only snapshots scanned from the label arrays (or imported from a manifest carrying n_pos and
n_samples) know it. Bins are computed in integer arithmetic inside the database, so a window
whose fraction sits exactly on an edge always lands in the same bin: [lower, upper).

Most windows of a training set are `no_seizure`, and a `no_seizure` window has n_pos == 0 by
definition. When the rollups confirm that for the subset (their no_seizure positive-sample sum
is 0), those windows are counted from the rollups and only the seizure windows are read: a
primary-key range, a few percent of the snapshot. Otherwise every selected window is read.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session

from app.models import Dataset, Snapshot, Window
from app.queries.stats import require_sample_counts
from app.queries.subset import Subset, answer_source
from app.queries.subset_counts import count_subset
from app.queries.unmatched import checked_filters
from seizure_stats.schemas.reports import HistogramBin, HistogramQuery, HistogramResponse

ZERO_BIN = -1


def compute_histogram(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: HistogramQuery
) -> HistogramResponse:
    """Window counts of the subset by seizure fraction; 422 when the snapshot lacks n_pos."""
    require_sample_counts(dataset, snapshot, "the histogram (of each window's seizure fraction)")
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    subset = count_subset(session, snapshot, query)
    categories = query.selected_categories()
    background_is_zero = "no_seizure" in categories and subset.positive_samples["no_seizure"] == 0
    zero = subset.windows["no_seizure"] if background_is_zero else 0
    scanned = [c for c in categories if not (background_is_zero and c == "no_seizure")]
    counts = [0] * query.bins
    for index, windows in _binned(session, snapshot, query, scanned):
        if index == ZERO_BIN:
            zero += windows
        else:
            counts[index] += windows
    bins = query.bins
    return HistogramResponse(
        **answer_source(dataset, snapshot),
        zero=zero,
        bins=[
            HistogramBin(lower=i / bins, upper=(i + 1) / bins, count=count)
            for i, count in enumerate(counts)
        ],
        total=zero + sum(counts),
        missing_windows=subset.missing_windows,
        **unmatched.report(list(subset.warnings)),
    )


def _binned(
    session: Session, snapshot: Snapshot, query: HistogramQuery, categories: list[str]
) -> list[tuple[int, int]]:
    """(bin, windows) of the present recordings' windows in these categories."""
    if not categories:
        return []
    bins = query.bins
    bin_index = case(
        (Window.n_pos <= 0, ZERO_BIN),
        (Window.n_pos >= Window.n_samples, bins - 1),
        else_=cast(Window.n_pos, BigInteger) * bins // Window.n_samples,
    ).label("bin")
    windows = (
        Subset.of(session, snapshot, query)
        .windows(bin_index, categories=categories)
        .subquery("binned")
    )
    # Grouped outside, by the subquery's column: Postgres cannot match a GROUP BY expression
    # to the SELECT one when each carries its own bound parameters.
    rows = session.execute(select(windows.c.bin, func.count()).group_by(windows.c.bin)).all()
    return [(int(index), int(count)) for index, count in rows]
