"""Answers sent a chunk at a time as they are formatted: the balanced index and CSV exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from functools import partial

import numpy as np
from fastapi import Request, Response
from sqlalchemy.orm import Session
from zlib_ng import zlib_ng

from app.api.answer_cache import StreamedAnswer
from app.api.answer_path import answer_subset
from app.models import Dataset, Snapshot
from app.queries.answers import BREAKDOWN_EXPORT
from app.queries.balanced import IndexArrays, checked_index, checked_index_arrays
from seizure_stats.schemas.questions import BalancedQuery
from seizure_stats.schemas.reports import BreakdownQuery, BreakdownResponse

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


NPZ_MEDIA_TYPE = "application/x-npz"
# Fast, and still a tenth of the size: the text is the same few names and digits over again.
INDEX_GZIP_LEVEL = 3


async def stream_index(
    request: Request, dataset: str, query: BalancedQuery, output: str
) -> Response:
    """The kept entries as JSON lines, one JSON array ("json") or numpy columns ("npz").

    Text goes gzip-compressed to a client that accepts it, which ours does; each encoding is
    an answer of its own, keyed and cached apart (the compressed one costs a tenth).
    """
    gzipped = output != "npz" and accepts_gzip(request.headers.get("accept-encoding", ""))
    compute = partial(index_answer, query, output, gzipped)
    kind = f"index-{output}" + ("-gzip" if gzipped else "")
    return await answer_subset(request, kind, dataset, query, compute)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip: its own entry decides, else `*`'s, each
    allowing it with a q above 0 (RFC 9110, 12.5.3)."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        text = params.strip().removeprefix("q=").strip() if params else "1"
        try:
            qualities[coding.strip().lower()] = float(text)
        except ValueError:
            qualities[coding.strip().lower()] = 0.0
    return qualities.get("gzip", qualities.get("*", 0.0)) > 0


def index_answer(
    query: BalancedQuery,
    output: str,
    gzipped: bool,
    session: Session,
    dataset: Dataset,
    snapshot: Snapshot,
) -> StreamedAnswer:
    # The selection is made before the first byte, so errors still get a proper status; the
    # lines are formatted as they are sent, a chunk at a time.
    headers = {
        "X-Snapshot": str(snapshot.id),
        "X-Content-Hash": snapshot.content_hash,
        "Vary": "Accept-Encoding",
    }
    if output == "npz":
        unmatched, arrays = checked_index_arrays(session, snapshot, query)
        headers |= unmatched_headers(unmatched.reported, unmatched.counts)
        return StreamedAnswer(iter((npz_bytes(arrays),)), NPZ_MEDIA_TYPE, headers)
    unmatched, entries = checked_index(session, snapshot, query)
    headers |= unmatched_headers(unmatched.reported, unmatched.counts)
    chunks = _json_array(entries) if output == "json" else _json_lines(entries)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        chunks = gzip_chunks(chunks)
    media_type = "application/json" if output == "json" else "application/x-ndjson"
    return StreamedAnswer(chunks, media_type, headers)


def npz_bytes(arrays: IndexArrays) -> bytes:
    """The columns as an .npz file: `numpy.load` reads it back without pickle."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        cache_files=np.array(arrays.cache_files, dtype=np.str_),
        recording=arrays.recording,
        window_idx=arrays.window_idx,
    )
    return buffer.getvalue()


def gzip_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """One gzip stream over the chunks, compressed as they come, so it still streams."""
    compressor = zlib_ng.compressobj(INDEX_GZIP_LEVEL, zlib_ng.DEFLATED, 16 + zlib_ng.MAX_WBITS)
    for chunk in chunks:
        compressed = compressor.compress(chunk)
        if compressed:
            yield compressed
    yield compressor.flush()


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
