"""Exact statistics of a subset: counts, ratios and pos_weight from the subset's rollup totals.

Every filter is recording-level (plus a choice of categories), so a subset's counts are sums of
the rollup rows of its recordings (`subset_counts.count_subset`): the cost follows the number of
recordings, not of windows.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.errors import InvalidRequestError
from app.models import Dataset, Snapshot
from app.queries.subset import answer_source
from app.queries.subset_counts import count_subset
from app.queries.unmatched import checked_filters
from seizure_stats.labels import (
    LOW_RATIO_WARNING_BELOW,
    STALE_WARNING_ABOVE,
    Basis,
    Weighting,
    pos_weight,
    ratio,
)
from seizure_stats.schemas.questions import Counts, SampleCounts, StatsQuery, StatsResponse


def make_counts(partial: int, full: int, background: int) -> Counts:
    seizure = partial + full
    return Counts(
        no_seizure=background,
        partial_seizure=partial,
        full_seizure=full,
        seizure=seizure,
        total=seizure + background,
    )


def window_weight(counts: Counts, weighting: str, beta: float) -> tuple[float, float]:
    """The seizure ratio of these windows and the pos_weight it gives, on the window basis."""
    seizure_ratio = ratio(counts.seizure, counts.total)
    weight = pos_weight(
        seizure_ratio,
        Weighting(weighting),
        n_positive=counts.seizure,
        n_negative=counts.no_seizure,
        beta=beta,
    )
    return seizure_ratio, weight


def sample_counts(
    snapshot: Snapshot, positive: int, total: int
) -> tuple[SampleCounts, float | None]:
    """Positive and total samples with their ratio, or "unknown" when the snapshot lacks them."""
    if not snapshot.has_sample_counts:
        # A manifest carries no label counts: say "unknown" rather than a made-up 0.
        return SampleCounts(positive=None, total=None), None
    return SampleCounts(positive=positive, total=total), ratio(positive, total)


def subset_warnings(counts: Counts, missing_windows: int) -> list[str]:
    """The warnings that travel with every answer (docs/design.md)."""
    warnings = []
    if counts.total == 0:
        warnings.append("empty_subset: no windows match this filter (seizure_ratio is 0.0)")
    elif ratio(counts.seizure, counts.total) < LOW_RATIO_WARNING_BELOW:
        warnings.append(
            f"low_seizure_ratio: seizure_ratio {ratio(counts.seizure, counts.total):.6f} is below "
            f"{LOW_RATIO_WARNING_BELOW}; training risks collapsing to the negative class"
        )
    considered = counts.total + missing_windows
    if considered and missing_windows / considered > STALE_WARNING_ABOVE:
        warnings.append(
            f"stale_manifest: {missing_windows} of {considered} windows "
            f"({missing_windows / considered:.1%}) belong to recordings missing from the volume"
        )
    return warnings


def require_sample_counts(
    dataset: Dataset, snapshot: Snapshot, needed_by: str, otherwise: str = ""
) -> None:
    """A 422 saying how to get them when the snapshot lacks per-window sample counts."""
    if snapshot.has_sample_counts:
        return
    alternative = f" or {otherwise}" if otherwise else " to get them"
    raise InvalidRequestError(
        f"{needed_by} needs per-window sample counts, but snapshot {snapshot.id} of dataset "
        f"{dataset.name!r} was imported from a manifest without them (no n_pos and n_samples); "
        f"scan the cache (seizure-stats scan){alternative}"
    )


def compute_stats(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: StatsQuery
) -> StatsResponse:
    """Exact counts, ratios and pos_weight of a subset of one snapshot."""
    weighting, basis = Weighting(query.weighting), Basis(query.basis)
    if basis is Basis.SAMPLE:
        require_sample_counts(dataset, snapshot, "basis=sample", otherwise="use basis=window")
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    subset = count_subset(session, snapshot, query)
    w = subset.windows
    counts = make_counts(w["partial_seizure"], w["full_seizure"], w["no_seizure"])
    seizure_ratio = ratio(counts.seizure, counts.total)

    samples, sample_ratio = sample_counts(
        snapshot, sum(subset.positive_samples.values()), sum(subset.samples.values())
    )

    if basis is Basis.SAMPLE:
        positive, total = samples.positive or 0, samples.total or 0
        p = ratio(positive, total)
        n_positive, n_negative = positive, total - positive
    else:
        p, n_positive, n_negative = seizure_ratio, counts.seizure, counts.no_seizure
    weight = pos_weight(p, weighting, n_positive=n_positive, n_negative=n_negative, beta=query.beta)
    return StatsResponse(
        **answer_source(dataset, snapshot),
        counts=counts,
        samples=samples,
        seizure_ratio=seizure_ratio,
        sample_ratio=sample_ratio,
        weighting=query.weighting,
        basis=query.basis,
        beta=query.beta,
        pos_weight=weight,
        recordings=subset.recordings,
        missing_windows=subset.missing_windows,
        missing_recordings=subset.missing_recordings,
        **unmatched.report(subset_warnings(counts, subset.missing_windows) + list(subset.warnings)),
    )
