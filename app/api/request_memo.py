"""A GET question asked again in the same words is answered without being parsed again.

When a sweep starts, a thousand jobs send a few dozen distinct requests between them, each many
times over and nearly at once. Validating the query model and solving the route's dependencies
costs about twice what answering from the cache does. So each GET route of the datasets routers
remembers, per process, what each request it took asked (app.api.answer_path.Asked). The key is
the request as it came: path, query string, and whether it accepts gzip (the index's encoding
depends on it). When the same request comes again, it goes straight to the answer path: 304,
cache, waiting for the same question being computed, or computing it.

An entry is trusted only under the stamp it was noted with (DatasetStates.stamp): nothing
committed since, by any process. Under that stamp the question's dataset, snapshot and presence
are what they were. The token is not part of it: where reads need one, it is checked on every
request, remembered or not, so a revoked token is refused at once. A request is noted as soon as
it has asked its question, so that the others of a burst find it while it is computed, and
forgotten if its answer was not a 200 or a 304: a refused request is checked in full every time.
On a route of questions (QuestionRoute), a request whose dataset's state is not remembered
(after a write) first waits for it, as the others of its burst do, so that they still find the
first one noted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial

from fastapi import Request, Response
from sqlalchemy.exc import SQLAlchemyError

from app.api.answer_cache import DatasetStates
from app.api.answer_path import Asked, answer_asked
from app.api.bodies import BodyGuardRoute, Handler
from app.api.deps import check_token_first
from app.api.heavy import dataset_state
from app.api.streams import accepts_gzip
from app.errors import AppError
from app.lru import LruCache
from app.observability.metrics import Metrics

# Longer query strings are not noted, so that the memo stays small (long filters come by POST).
MEMO_QUERY_BYTES = 2048
ANSWERED = (200, 304)

RequestKey = tuple[str, bytes, bool]


@dataclass(frozen=True)
class Noted:
    stamp: object
    asked: Asked


class RequestMemo(LruCache[RequestKey, Noted]):
    """What recent GET requests asked, by the request as it came."""

    def asked(self, key: RequestKey, stamp: object) -> Asked | None:
        """What the request asked, if nothing was committed since."""
        noted = self.get(key)
        return noted.asked if noted is not None and noted.stamp == stamp else None

    def note(self, key: RequestKey, stamp: object, asked: Asked) -> None:
        self.put(key, Noted(stamp, asked))


def request_key(request: Request) -> RequestKey | None:
    """The request as the memo knows it; None for one it does not note."""
    query: bytes = request.scope["query_string"]
    if request.method != "GET" or len(query) > MEMO_QUERY_BYTES:
        return None
    gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    return request.scope["path"], query, gzip


class MemoizedRoute(BodyGuardRoute):
    """A route of the datasets routers: what its GET requests ask is remembered, as said above."""

    # Whether the route's requests ask questions about a dataset (QuestionRoute): only those
    # wait for the dataset's state before they are parsed; a listing would read it for nothing.
    asks_questions = False

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if "GET" not in (self.methods or ()):
            return handler

        async def remembering(request: Request) -> Response:
            memo: RequestMemo = request.app.state.request_memo
            key = request_key(request) if memo.max_entries else None
            if key is None:
                return await handler(request)
            states: DatasetStates = request.app.state.dataset_states
            # Taken first: a commit while the request is answered leaves what it noted stale.
            stamp = states.stamp()
            asked = memo.asked(key, stamp)
            if asked is None and self.asks_questions and await waited_for_dataset_state(request):
                # The others of a burst waited too: the first of them may have noted it since.
                asked = memo.asked(key, stamp)
            if asked is not None:
                await check_token_first(request, writes=False)
                metrics: Metrics = request.app.state.metrics
                metrics.remembered.inc()
                return await answer_asked(request, asked)
            request.state.note_asked = partial(memo.note, key, stamp)
            try:
                response = await handler(request)
            except BaseException:
                memo.discard(key)
                raise
            if response.status_code not in ANSWERED:
                memo.discard(key)
            return response

        return remembering


class QuestionRoute(MemoizedRoute):
    """A route whose requests ask a question about a dataset (stats, balanced, index, breakdown,
    histogram, diff, folds): remembered, and waiting for the dataset's state first."""

    asks_questions = True


async def waited_for_dataset_state(request: Request) -> bool:
    """Wait for the state of the dataset the request names, if it is not remembered; whether
    it had to.

    After a write nothing is remembered, and all the requests of a burst would be parsed in
    full, each up to where its question waits for the dataset's state, before any is noted.
    Waiting here first, they resume one after the other once the state is read: the first of
    each distinct request is parsed and noted before the next resumes, which finds it noted.
    """
    name = request.path_params.get("dataset")
    states: DatasetStates = request.app.state.dataset_states
    if name is None or states.remembered(name) is not None:
        return False
    await check_token_first(request, writes=False)  # nothing is read for a refused request
    # What cannot be read is left to the route, which refuses it as it would have (a 422 for
    # a bad parameter before anything of the database); what is read, the route takes.
    with contextlib.suppress(AppError, SQLAlchemyError):
        request.state.dataset_state = (name, await dataset_state(request, name))
    return True
