"""What a rescan did to the numbers a training run uses: seizure ratio and pos_weight, before
and after, over each snapshot's present recordings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models import Dataset, Snapshot
from app.queries.stats import compute_stats
from seizure_stats.schemas.questions import StatsQuery, StatsResponse


@dataclass(frozen=True)
class RateChange:
    old: StatsResponse
    new: StatsResponse

    @property
    def ratio_change(self) -> float:
        return self.new.seizure_ratio - self.old.seizure_ratio

    @property
    def pos_weight_change(self) -> float:
        return self.new.pos_weight - self.old.pos_weight


def rate_change(session: Session, dataset: Dataset, old: Snapshot, new: Snapshot) -> RateChange:
    """Both snapshots' whole-dataset stats, with the default weighting (as the composition)."""
    return RateChange(
        old=compute_stats(session, dataset, old, StatsQuery(snapshot=old.id)),
        new=compute_stats(session, dataset, new, StatsQuery(snapshot=new.id)),
    )
