"""Answers sent a chunk at a time as they are formatted: the balanced index and CSV exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from functools import partial

from fastapi import Request, Response
from sqlalchemy.orm import Session

from app.api.answer_cache import StreamedAnswer
from app.api.answer_path import answer_subset
from app.models import Dataset, Snapshot
from app.queries.answers import BREAKDOWN_EXPORT
from app.queries.balanced import checked_index
from app.schemas.questions import BalancedQuery
from app.schemas.reports import BreakdownQuery, BreakdownResponse

CSV_COLUMNS = (
    "key",
    "patient",
    "session",
    "recording",
    "category",
    "no_seizure",
    "partial_seizure",
    "full_seizure",
    "seizure",
    "total",
    "seizure_ratio",
    "share",
    "positive_samples",
    "samples",
    "sample_ratio",
    "recordings",
    "missing_windows",
)


async def stream_index(
    request: Request, dataset: str, query: BalancedQuery, output: str
) -> Response:
    """The kept entries as JSON lines, or as one JSON array when `output` is "json"."""
    compute = partial(index_answer, query, output)
    return await answer_subset(request, f"index-{output}", dataset, query, compute)


def index_answer(
    query: BalancedQuery, output: str, session: Session, dataset: Dataset, snapshot: Snapshot
) -> StreamedAnswer:
    # The selection is made before the first byte, so errors still get a proper status; the
    # lines are formatted as they are sent, a chunk at a time.
    unmatched, entries = checked_index(session, snapshot, query)
    headers = {"X-Snapshot": str(snapshot.id), "X-Content-Hash": snapshot.content_hash}
    headers |= unmatched_headers(unmatched.reported, unmatched.counts)
    if output == "json":
        return StreamedAnswer(_json_array(entries), "application/json", headers)
    return StreamedAnswer(_json_lines(entries), "application/x-ndjson", headers)


# A header of a few kilobytes passes every proxy and client; the full list is in the JSON answer
# of the same question (`balanced`, or the breakdown without format=csv).
MAX_UNMATCHED_HEADER = 4000


def unmatched_headers(unmatched: dict[str, list[str]], counts: dict[str, int]) -> dict[str, str]:
    """How a streamed answer names its filter values that match nothing: `X-Unmatched-Values`,
    how many there are, and `X-Unmatched-Filter`, a JSON object of them by filter (ASCII, as a
    header must be), holding the first ones only when all would not fit MAX_UNMATCHED_HEADER."""
    if not unmatched:
        return {}
    count = sum(counts.values())
    shown: dict[str, list[str]] = {}
    size = 2
    pairs = ((name, value) for name, values in unmatched.items() for value in values)
    for name, value in pairs:
        # At most what the value adds, with its filter's name should it open a new list.
        size += len(json.dumps(value)) + len(json.dumps(name)) + 4
        if size > MAX_UNMATCHED_HEADER:
            break
        shown.setdefault(name, []).append(value)
    text = json.dumps(shown, separators=(",", ":"))
    return {"X-Unmatched-Values": str(count), "X-Unmatched-Filter": text}


def _json_lines(entries: Iterator[tuple[str, int]]) -> Iterator[bytes]:
    encoded: dict[str, str] = {}
    batch: list[str] = []
    for cache_file, window_idx in entries:
        name = encoded.get(cache_file)
        if name is None:
            name = encoded[cache_file] = json.dumps(cache_file)
        batch.append(f'{{"cache_file": {name}, "window_idx": {window_idx}}}\n')
        if len(batch) >= 10_000:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


def _json_array(entries: Iterator[tuple[str, int]]) -> Iterator[bytes]:
    yield b"["
    first = True
    for chunk in _json_lines(entries):
        lines = chunk.decode().rstrip("\n").split("\n")
        yield (("" if first else ",") + ",".join(lines)).encode()
        first = False
    yield b"]"


async def stream_breakdown_csv(request: Request, dataset: str, query: BreakdownQuery) -> Response:
    """Every group of the breakdown (or the page asked for) as CSV."""
    compute = partial(breakdown_csv, query)
    return await answer_subset(request, "breakdown-csv", dataset, query, compute)


def breakdown_csv(
    query: BreakdownQuery, session: Session, dataset: Dataset, snapshot: Snapshot
) -> StreamedAnswer:
    answer = BREAKDOWN_EXPORT.compute(session, dataset, snapshot, query)
    headers = {
        "X-Snapshot": str(answer.snapshot),
        "X-Content-Hash": answer.content_hash,
        "X-Total-Groups": str(answer.total_groups),
        "Content-Disposition": f'attachment; filename="{dataset.name}-by-{query.by}.csv"',
    }
    headers |= unmatched_headers(answer.unmatched, answer.unmatched_counts)
    return StreamedAnswer(_csv_lines(answer), "text/csv", headers)


def _csv_lines(answer: BreakdownResponse) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for number, group in enumerate(answer.groups, start=1):
        counts = group.counts
        texts = (group.key, group.patient, group.session, group.recording, group.category)
        writer.writerow(
            [text_cell(value) for value in texts]
            + [
                _number_cell(value)
                for value in (
                    counts.no_seizure,
                    counts.partial_seizure,
                    counts.full_seizure,
                    counts.seizure,
                    counts.total,
                    group.seizure_ratio,
                    group.share,
                    group.samples.positive,
                    group.samples.total,
                    group.sample_ratio,
                    group.recordings,
                    group.missing_windows,
                )
            ]
        )
        if number % 5000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


# A spreadsheet runs a cell starting with one of these as a formula (a cache file named
# `=HYPERLINK(...)_windows.npz` would become a live link). OWASP's advice on CSV injection: make
# such a text cell text with a leading single quote, which spreadsheets show without it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """A name column's cell: the name, quoted so that no spreadsheet takes it for a formula."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _number_cell(value: float | None) -> str:
    # repr of a float is its shortest exact form: a CSV reader gets the same number back.
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
