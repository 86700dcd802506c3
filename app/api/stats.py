"""Statistics and balanced selection of a dataset's subsets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app import catalog
from app.api.answer_cache import AnswerCache, compute_answer
from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess, only_params
from app.api.heavy import ask_question, in_read_session, run_read
from app.models import Dataset, Snapshot
from app.queries.balanced import balanced_index, compute_balanced
from app.queries.filters import release_filter_garbage
from app.queries.stats import compute_stats
from app.schemas.questions import (
    BalancedIndexParams,
    BalancedQuery,
    BalancedResponse,
    ErrorResponse,
    IndexFormat,
    StatsQuery,
    StatsResponse,
    question_in,
)

router = APIRouter(
    prefix="/api/v1/datasets",
    tags=["statistics"],
    dependencies=[ReadAccess],
    route_class=BodyGuardRoute,
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 422, 429, 503)
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the answer for this ETag has not changed."}
}
INDEX_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {}, "application/json": {}}}
}
# Snapshots never change, but presence can: a pinned answer may be reused for a while, an
# answer about "current" must be revalidated (a cheap 304 when nothing moved).
PINNED_CACHE_CONTROL = "public, max-age=300"
CURRENT_CACHE_CONTROL = "no-cache"


def cache_headers(etag: str, pinned: bool) -> dict[str, str]:
    control = PINNED_CACHE_CONTROL if pinned else CURRENT_CACHE_CONTROL
    return {"ETag": etag, "Cache-Control": control}


def not_modified(request: Request, etag: str) -> bool:
    tags = request.headers.get("if-none-match", "")
    return etag in {tag.strip() for tag in tags.split(",")} or tags.strip() == "*"


async def answer(
    request: Request,
    kind: str,
    dataset: str,
    query: StatsQuery | BalancedQuery,
) -> Response:
    """Serve from memory when possible; the database is asked only for what is not known."""
    cache: AnswerCache = request.app.state.answer_cache
    question = await ask_question(request, kind, dataset, query)
    headers = cache_headers(question.etag, question.pinned)
    if not_modified(request, question.etag):
        return Response(status_code=304, headers=headers)
    cached = cache.get(question.key)
    if cached is not None:
        return Response(cached, media_type="application/json", headers=headers)
    work = partial(
        compute_answer, dataset=dataset, question=question, compute=partial(compute, query)
    )
    body, as_asked = await run_read(request, [question.snapshot_id], work)
    release_filter_garbage(query)
    if as_asked:
        cache.put(question.key, body)
    else:
        # Newer than the question's key: no tag, or a later If-None-Match could match it.
        headers = {"Cache-Control": "no-cache"}
    return Response(body, media_type="application/json", headers=headers)


def compute(
    query: StatsQuery | BalancedQuery, session: Session, dataset: Dataset, snapshot: Snapshot
) -> StatsResponse | BalancedResponse:
    if isinstance(query, StatsQuery):
        return compute_stats(session, dataset, snapshot, query)
    return compute_balanced(session, dataset, snapshot, query)


@router.get(
    "/{dataset}/stats",
    summary="Exact counts, seizure ratio and pos_weight of a subset",
    response_model=StatsResponse,
    responses=ERRORS | NOT_MODIFIED,
)
async def get_stats(
    dataset: str, request: Request, query: Annotated[StatsQuery, Query()]
) -> Response:
    return await answer(request, "stats", dataset, query)


@router.post(
    "/{dataset}/stats",
    summary="The same as GET, with the filter in a JSON body (for long recording lists)",
    response_model=StatsResponse,
    responses=ERRORS | NOT_MODIFIED,
    dependencies=[Depends(only_params())],
)
async def post_stats(dataset: str, request: Request, query: StatsQuery) -> Response:
    return await answer(request, "stats", dataset, query)


@router.get(
    "/{dataset}/balanced",
    summary="What the balanced training dataset keeps of a subset: counts and pos_weight",
    response_model=BalancedResponse,
    responses=ERRORS | NOT_MODIFIED,
)
async def get_balanced(
    dataset: str, request: Request, query: Annotated[BalancedQuery, Query()]
) -> Response:
    return await answer(request, "balanced", dataset, query)


@router.post(
    "/{dataset}/balanced",
    summary="The same as GET, with the filter in a JSON body",
    response_model=BalancedResponse,
    responses=ERRORS | NOT_MODIFIED,
    dependencies=[Depends(only_params())],
)
async def post_balanced(dataset: str, request: Request, query: BalancedQuery) -> Response:
    return await answer(request, "balanced", dataset, query)


async def stream_index(
    request: Request, dataset: str, query: BalancedQuery, output: str
) -> Response:
    # The selection is computed before the first byte, so errors still get a proper status;
    # the lines are formatted as they are sent, a chunk at a time.
    question = await ask_question(request, f"index-{output}", dataset, query)
    headers = cache_headers(question.etag, question.pinned)
    if not_modified(request, question.etag):
        return Response(status_code=304, headers=headers)

    def select_entries(session: Session) -> tuple[Snapshot, Iterator[tuple[str, int]]]:
        found = catalog.get_dataset(session, dataset)
        snapshot = catalog.get_snapshot(session, found, question.snapshot_id)
        return snapshot, balanced_index(session, found, snapshot, query)

    snapshot, entries = await run_read(
        request, [question.snapshot_id], in_read_session(select_entries)
    )
    release_filter_garbage(query)
    headers |= {"X-Snapshot": str(snapshot.id), "X-Content-Hash": snapshot.content_hash}
    if output == "json":
        body, media_type = _json_array(entries), "application/json"
    else:
        body, media_type = _json_lines(entries), "application/x-ndjson"
    return StreamingResponse(body, media_type=media_type, headers=headers)


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


@router.get(
    "/{dataset}/balanced/index",
    summary="The kept (cache_file, window_idx) entries in dataset order, streamed",
    response_description="JSON lines, one entry per line (or a JSON array with format=json).",
    responses=ERRORS | NOT_MODIFIED | INDEX_CONTENT,
    response_class=StreamingResponse,
)
async def get_balanced_index(
    dataset: str, request: Request, params: Annotated[BalancedIndexParams, Query()]
) -> Response:
    query = question_in(params, BalancedQuery)
    return await stream_index(request, dataset, query, params.format)


@router.post(
    "/{dataset}/balanced/index",
    summary="The same as GET, with the filter in a JSON body",
    responses=ERRORS | NOT_MODIFIED | INDEX_CONTENT,
    response_class=StreamingResponse,
    dependencies=[Depends(only_params("format"))],
)
async def post_balanced_index(
    dataset: str,
    request: Request,
    query: BalancedQuery,
    format: IndexFormat = "jsonl",
) -> Response:
    return await stream_index(request, dataset, query, format)
