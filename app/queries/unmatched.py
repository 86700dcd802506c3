"""Filter values that name nothing: a patient, session or recording the snapshot does not have.

`exclude_patient=aaaaamcgo` (meant: `aaaamcgo`) leaves out nothing, so the held-out patient
would stay in the training set with nobody told. Every question therefore asks, before it
counts, which values of its name filters (`NAME_FILTERS` whose target has `NAME_COLUMNS`)
select no recording of the snapshot, present or missing: a value "matches" exactly when its
own clause of `app.queries.filters` would select a recording, since both are made from the
same (column, values) pairs. Each such value is reported in the answer (`unmatched`, and an
`unmatched_filter` warning per filter), or, for a strict question, refused with a 422.

The check is one query per name filter that is set, returning the values that matched: a
SELECT DISTINCT of the compared column over the snapshot's recordings, through the dataset's
name indexes, however many values (up to 100,000) the filter lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy import Select, select, union
from sqlalchemy.orm import Session

from app.errors import UnmatchedFilterError
from app.models import Recording, RecordingRollup, Snapshot
from app.queries.filters import NAME_COLUMNS
from seizure_stats.schemas.filters import NAME_FILTERS, FilterSpec
from seizure_stats.schemas.questions import SubsetFilter, WarningDetail

# The filters whose values can name nothing: those that name recordings.
MATCHED_FILTERS: tuple[FilterSpec, ...] = tuple(
    spec for spec in NAME_FILTERS if spec.target in NAME_COLUMNS
)
UNMATCHED_KIND = "unmatched_filter"
# Values written out per filter in a warning or an error's text.
SHOWN_VALUES = 20
# Values listed per filter in `unmatched` (the first, in sorted order; `unmatched_counts` has how
# many there are): 100,000 names that match nothing, echoed whole, made each answer megabytes.
REPORTED_VALUES = 1000


class UnmatchedReport(TypedDict):
    """What an answer says of its warnings and of its filter values that match nothing."""

    warnings: list[str]
    warning_details: list[WarningDetail]
    unmatched: dict[str, list[str]]
    unmatched_counts: dict[str, int]


@dataclass(frozen=True)
class UnmatchedValues:
    """Each name filter's values that match no recording of one snapshot (filters with some)."""

    snapshot_id: int
    values: dict[str, list[str]] = field(default_factory=dict)

    @property
    def reported(self) -> dict[str, list[str]]:
        """What `unmatched` lists: each filter's first REPORTED_VALUES."""
        return {name: values[:REPORTED_VALUES] for name, values in self.values.items()}

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(values) for name, values in self.values.items()}

    def warnings(self) -> list[str]:
        return [self.warning(name) for name in self.values]

    def warning(self, name: str) -> str:
        return (
            f"{UNMATCHED_KIND}: {name}: no recording of snapshot {self.snapshot_id} matches "
            f"{listed(self.values[name])}"
        )

    def report(self, warnings: list[str]) -> UnmatchedReport:
        """The answer's `warnings` (these first: they explain the others, an empty subset
        say), `warning_details` and `unmatched`."""
        details = [
            WarningDetail(
                kind=UNMATCHED_KIND, message=self.warning(name), parameter=name, values=values
            )
            for name, values in self.reported.items()
        ]
        details += [WarningDetail(kind=text.split(":", 1)[0], message=text) for text in warnings]
        return {
            "warnings": [detail.message for detail in details],
            "warning_details": details,
            "unmatched": self.reported,
            "unmatched_counts": self.counts,
        }

    def refusal(self) -> UnmatchedFilterError:
        named = "; ".join(f"{name}: {listed(values)}" for name, values in self.values.items())
        return UnmatchedFilterError(
            f"strict: filter values that match no recording of snapshot {self.snapshot_id}: "
            f"{named} (strict=false, or --no-strict on the command line, answers anyway, with a "
            "warning)",
            self.reported,
            self.counts,
        )


def listed(values: list[str]) -> str:
    shown = ", ".join(repr(value) for value in values[:SHOWN_VALUES])
    rest = len(values) - SHOWN_VALUES
    return shown + (f" and {rest:,} more" if rest > 0 else "")


def find_unmatched(session: Session, snapshot: Snapshot, subset: SubsetFilter) -> UnmatchedValues:
    """The values of the subset's name filters that select no recording of the snapshot.

    Values are those of the normalised filter (sorted, each once), as answers are cached by it.
    """
    dialect = session.get_bind().dialect.name
    normalized = subset.normalized()
    found: dict[str, list[str]] = {}
    for spec in MATCHED_FILTERS:
        values = normalized.values_of(spec)
        if not values:
            continue
        matched = _matched(session, snapshot, spec, values, dialect)
        if unmatched := [value for value in values if value not in matched]:
            found[spec.name] = unmatched
    return UnmatchedValues(snapshot.id, found)


def checked_filters(
    session: Session, snapshot: Snapshot, subset: SubsetFilter, *, strict: bool
) -> UnmatchedValues:
    """`find_unmatched`, refused (422 `unmatched_filter`) when the question is strict."""
    unmatched = find_unmatched(session, snapshot, subset)
    if strict and unmatched.values:
        raise unmatched.refusal()
    return unmatched


def _matched(
    session: Session, snapshot: Snapshot, spec: FilterSpec, values: list[str], dialect: str
) -> set[str]:
    """The values that name something of the snapshot.

    More values than the snapshot has recordings (a list of 100,000 names, most of them
    elsewhere): reading the snapshot's own names and looking the values up in Python costs what
    the snapshot holds, where sending the values to the database cost seconds. Either way each
    value is compared with the same columns, by equality.
    """
    if len(values) <= snapshot.recordings:
        return set(session.scalars(_matched_names(snapshot, spec, values, dialect)))
    matched: set[str] = set()
    for lookup in NAME_COLUMNS[spec.target](values):
        names = set(session.scalars(_snapshot_names(snapshot, lookup.column)))
        matched.update(value for value in lookup.values if value in names)
    return matched


def _snapshot_names(snapshot: Snapshot, column: Any) -> Select[Any]:
    """Every distinct value of `column` over the snapshot's recordings."""
    return (
        select(column)
        .select_from(Recording)
        .join(RecordingRollup, RecordingRollup.recording_id == Recording.id)
        .where(Recording.dataset_id == snapshot.dataset_id)
        .where(RecordingRollup.snapshot_id == snapshot.id)
        .distinct()
    )


def _matched_names(
    snapshot: Snapshot, spec: FilterSpec, values: list[str], dialect: str
) -> Select[Any]:
    """The values that some recording of the snapshot equals in a column compared with them."""
    selects = [
        select(lookup.column.label("name"))
        .select_from(Recording)
        .join(RecordingRollup, RecordingRollup.recording_id == Recording.id)
        .where(Recording.dataset_id == snapshot.dataset_id)
        .where(RecordingRollup.snapshot_id == snapshot.id)
        .where(lookup.condition(dialect))
        for lookup in NAME_COLUMNS[spec.target](values)
    ]
    if len(selects) == 1:
        return selects[0].distinct()
    names = union(*selects).subquery("names")
    return select(names.c.name)
