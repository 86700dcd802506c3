"""The one path of every read question: its ETag and 304, the answer cache, the admission gate.

A question is keyed first (app.api.heavy.ask_question), from memory when it can be. A client
that holds the answer gets 304; an answer in the cache is sent as it was kept; the same
question asked again while it is computed waits for that computation (app.api.single_flight);
anything else is computed, and serialised, in a worker thread, through the gate when its
snapshot is large.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from app.api.answer_cache import (
    Answer,
    AnswerCache,
    Question,
    StreamedAnswer,
    compute_answer,
)
from app.api.heavy import ask_question, run_read
from app.api.single_flight import InFlight
from app.models import Dataset, Snapshot
from app.observability.metrics import Metrics
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


@dataclass(frozen=True)
class Asked:
    """A question ready to be answered: its dataset, its key and ETag, how to compute it."""

    dataset: str
    question: Question
    compute: Compute
    query: SubsetFilter | None = None  # what a computation built from it is let go of after


async def send_answer(
    request: Request,
    dataset: str,
    question: Question,
    compute: Compute,
    query: SubsetFilter | None = None,
) -> Response:
    """The answer to `question`; a request that may be asked again in the same words notes
    what it asked first (app.api.request_memo)."""
    asked = Asked(dataset, question, compute, query)
    note: Callable[[Asked], None] | None = getattr(request.state, "note_asked", None)
    if note is not None:
        note(asked)
    return await answer_asked(request, asked)


async def answer_asked(request: Request, asked: Asked) -> Response:
    """Serve from memory when possible; the database is asked only for what is not known, and
    only once for the same question asked many times at once."""
    question = asked.question
    headers = cache_headers(question.etag, question.pinned)
    if not_modified(request, question.etag):
        return Response(status_code=304, headers=headers)
    cache: AnswerCache = request.app.state.answer_cache
    in_flight: InFlight = request.app.state.in_flight
    metrics: Metrics = request.app.state.metrics
    cached = cache.get(question.key)
    if cached is not None:
        metrics.answers.labels("cache").inc()
        return whole_response(cached, headers)
    flight = await in_flight.wait_for(question.key)
    if flight is not None and isinstance(flight.result, Answer):
        metrics.answers.labels("shared").inc()
        return whole_response(flight.result, headers)
    work = partial(
        answer_to_send,
        dataset=asked.dataset,
        question=question,
        compute=asked.compute,
        cache=cache,
    )
    try:
        with in_flight.computing(question.key) as flight:
            computed, as_asked = await run_read(request, question.snapshot_ids, work)
            if as_asked and isinstance(computed, Answer):
                cache.put(question.key, computed)
                flight.result = computed
    finally:
        if asked.query is not None:
            release_filter_garbage(asked.query)
    metrics.answers.labels("computed").inc()
    if not as_asked:
        # Newer than the question's key: no tag, or a later If-None-Match could match it.
        headers = {"Cache-Control": "no-cache"}
    if isinstance(computed, Answer):
        return whole_response(computed, headers)
    headers |= computed.headers
    return StreamingResponse(computed.chunks, media_type=computed.media_type, headers=headers)


def whole_response(answer: Answer, headers: dict[str, str]) -> Response:
    headers = headers | dict(answer.headers)
    return Response(answer.body, media_type=answer.media_type, headers=headers)


def answer_to_send(
    factory: sessionmaker[Session],
    dataset: str,
    question: Question,
    compute: Compute,
    cache: AnswerCache,
) -> tuple[Answer | StreamedAnswer, bool]:
    """The answer computed, in the worker thread, with a streamed one held whole when the cache
    could keep it: so that it is ready for those waiting on the same question as soon as it is
    computed, however slowly its own client reads, and is sent as it will be from the cache
    (with a Content-Length, no trip through the thread pool per chunk). For a large snapshot
    this runs in a slot of the admission gate, so the slots bound the answers being held too."""
    computed, as_asked = compute_answer(
        factory, dataset=dataset, question=question, compute=compute
    )
    if as_asked and isinstance(computed, StreamedAnswer):
        return held_if_it_fits(cache, computed), as_asked
    return computed, as_asked


def held_if_it_fits(cache: AnswerCache, streamed: StreamedAnswer) -> Answer | StreamedAnswer:
    """The streamed answer's chunks joined, while they fit the cache's budget; past it, the
    stream as it was (what was read of it first), so no more is ever held than could be kept."""
    held: deque[bytes] = deque()
    cost = Answer(b"", streamed.media_type, streamed.headers).cost
    for chunk in streamed.chunks:
        held.append(chunk)
        cost += len(chunk)
        if not cache.admits(cost):
            rest = itertools.chain(drained(held), streamed.chunks)
            return StreamedAnswer(rest, streamed.media_type, streamed.headers)
    return Answer(b"".join(held), streamed.media_type, streamed.headers)


def drained(held: deque[bytes]) -> Iterator[bytes]:
    """The held chunks, each let go once it is sent (they were up to the cache's budget)."""
    while held:
        yield held.popleft()
