"""The one path of every read question: its ETag and 304, the answer cache, the admission gate.

A question is keyed first (app.api.heavy.ask_question), from memory when it can be. A client
that holds the answer gets 304; an answer in the cache is sent as it was kept; anything else is
computed, and serialised, in a worker thread, through the gate when its snapshot is large.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api.answer_cache import (
    Answer,
    AnswerCache,
    CacheKey,
    Question,
    StreamedAnswer,
    compute_answer,
)
from app.api.heavy import ask_question, run_read
from app.models import Dataset, Snapshot
from app.queries.answers import QUESTION_KINDS, QuestionKind
from app.queries.filters import release_filter_garbage
from seizure_stats.schemas.questions import SubsetFilter

Compute = Callable[[Session, Dataset, Snapshot], Answer | StreamedAnswer]

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


async def answer(request: Request, kind: str, dataset: str, query: SubsetFilter) -> Response:
    """A question about a subset whose answer is one JSON document."""
    compute = partial(json_answer, QUESTION_KINDS[kind], query)
    return await answer_subset(request, kind, dataset, query, compute)


def json_answer(
    kind: QuestionKind[SubsetFilter, BaseModel],
    query: SubsetFilter,
    session: Session,
    dataset: Dataset,
    snapshot: Snapshot,
) -> Answer:
    """The answer serialised where it was computed, in the worker thread: serialised on the
    event loop, a large answer (a diff's thousand recordings) held up every other request
    there, /healthz too."""
    return Answer(kind.compute(session, dataset, snapshot, query).model_dump_json().encode())


async def answer_subset(
    request: Request, kind: str, dataset: str, query: SubsetFilter, compute: Compute
) -> Response:
    """A question about a subset, keyed by `kind` and the normalised query."""
    question = await ask_question(request, kind, dataset, query)
    return await send_answer(request, dataset, question, compute, query)


async def send_answer(
    request: Request,
    dataset: str,
    question: Question,
    compute: Compute,
    query: SubsetFilter | None = None,
) -> Response:
    """Serve from memory when possible; the database is asked only for what is not known."""
    headers = cache_headers(question.etag, question.pinned)
    if not_modified(request, question.etag):
        return Response(status_code=304, headers=headers)
    cache: AnswerCache = request.app.state.answer_cache
    cached = cache.get(question.key)
    if cached is not None:
        headers |= cached.headers
        if cached.streamed:
            body = iter((cached.body,))
            return StreamingResponse(body, media_type=cached.media_type, headers=headers)
        return Response(cached.body, media_type=cached.media_type, headers=headers)
    work = partial(compute_answer, dataset=dataset, question=question, compute=compute)
    try:
        computed, as_asked = await run_read(request, question.snapshot_ids, work)
    finally:
        if query is not None:
            release_filter_garbage(query)
    if not as_asked:
        # Newer than the question's key: no tag, or a later If-None-Match could match it.
        headers = {"Cache-Control": "no-cache"}
    headers |= computed.headers
    if isinstance(computed, Answer):
        if as_asked:
            cache.put(question.key, computed)
        return Response(computed.body, media_type=computed.media_type, headers=headers)
    chunks = kept_once_sent(cache, question.key, computed) if as_asked else computed.chunks
    return StreamingResponse(chunks, media_type=computed.media_type, headers=headers)


def kept_once_sent(cache: AnswerCache, key: CacheKey, streamed: StreamedAnswer) -> Iterator[bytes]:
    """The chunks as they are sent, and the whole answer cached once all were.

    What is sent is kept only while it fits the cache's budget: a larger answer is let go as
    soon as it outgrows it, so no more of it is ever held than the cache could keep.
    """
    kept: list[bytes] | None = []
    cost = Answer(b"", streamed.media_type, streamed.headers).cost
    for chunk in streamed.chunks:
        if kept is not None:
            cost += len(chunk)
            if cache.admits(cost):
                kept.append(chunk)
            else:
                kept = None
        yield chunk
    if kept is not None:
        body = b"".join(kept)
        kept.clear()
        cache.put(key, Answer(body, streamed.media_type, streamed.headers, streamed=True))
