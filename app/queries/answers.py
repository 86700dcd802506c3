"""Each kind of question about a subset of one snapshot, and the function that answers it.

The API and the CLI both find their compute function here, so a question asked locally and one
asked over HTTP are answered by the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from app.models import Dataset, Snapshot
from app.queries.balanced import balanced_index, compute_balanced
from app.queries.breakdown import compute_breakdown
from app.queries.histogram import compute_histogram
from app.queries.stats import compute_stats
from seizure_stats.schemas.questions import SubsetFilter
from seizure_stats.schemas.reports import BreakdownQuery, BreakdownResponse

Q = TypeVar("Q", bound=SubsetFilter)
A = TypeVar("A")


@dataclass(frozen=True)
class QuestionKind(Generic[Q, A]):
    """A kind of question (its name keys cached answers) and the function that answers it."""

    name: str
    compute: Callable[[Session, Dataset, Snapshot, Q], A]


def export_breakdown(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BreakdownQuery
) -> BreakdownResponse:
    """A breakdown for export: without a `limit`, every group rather than a first page."""
    return compute_breakdown(session, dataset, snapshot, query, unpaged=True)


STATS = QuestionKind("stats", compute_stats)
BALANCED = QuestionKind("balanced", compute_balanced)
BALANCED_INDEX = QuestionKind("index", balanced_index)
BREAKDOWN = QuestionKind("breakdown", compute_breakdown)
BREAKDOWN_EXPORT = QuestionKind("breakdown-export", export_breakdown)
HISTOGRAM = QuestionKind("histogram", compute_histogram)

QUESTION_KINDS: dict[str, QuestionKind[Any, Any]] = {
    kind.name: kind
    for kind in (
        STATS,
        BALANCED,
        BALANCED_INDEX,
        BREAKDOWN,
        BREAKDOWN_EXPORT,
        HISTOGRAM,
    )
}
