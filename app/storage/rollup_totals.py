"""A snapshot's rollups summed once, when it is stored: what a whole-snapshot question starts from.

`Snapshot.rollup_totals` holds, for each combination of categories a recording has windows in
(its *mask*: bit 1 partial, 2 full, 4 no seizure), how many of the snapshot's recordings have
that combination and the sums of their rollup columns. Presence is not in it: it changes after
the import, while these sums never do, so a question subtracts the missing recordings' rows
(few, found through the partial index of missing recordings) instead of adding up every row.

The masks are what make the recording counts exact for any choice of categories: a recording
counts when it has windows in a chosen category, that is when its mask meets the chosen bits.

Written by `app.ingest.snapshot_store` (and, for snapshots stored before it existed, by
migration 0004, with the same GROUP BY); read by `app.queries.subset_counts`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import ROLLUP_PREFIX, RecordingRollup

KINDS = ("windows", "pos", "samples")
MASK_BITS = {"partial_seizure": 1, "full_seizure": 2, "no_seizure": 4}
# Every summed column of recording_rollups, by its name there.
SUMMED_COLUMNS = tuple(f"{prefix}_{kind}" for prefix in ROLLUP_PREFIX.values() for kind in KINDS)
# {mask as a string (a JSON key): {"recordings": n, column: sum, ...}}
RollupTotals = dict[str, dict[str, int]]


def category_mask() -> Any:
    """A rollup row's mask: the bits of the categories it has windows in."""
    return sum(
        case((getattr(RecordingRollup, f"{ROLLUP_PREFIX[category]}_windows") > 0, bit), else_=0)
        for category, bit in MASK_BITS.items()
    )


def sum_rollups(session: Session, snapshot_id: int) -> RollupTotals:
    """The snapshot's rollup rows summed by mask, in one pass over them."""
    mask = category_mask().label("mask")
    query = (
        select(
            mask,
            func.count().label("recordings"),
            *(func.sum(getattr(RecordingRollup, c)).label(c) for c in SUMMED_COLUMNS),
        )
        .where(RecordingRollup.snapshot_id == snapshot_id)
        .group_by(mask)
    )
    return {
        str(row["mask"]): {name: int(row[name] or 0) for name in ("recordings", *SUMMED_COLUMNS)}
        for row in session.execute(query).mappings()
    }
