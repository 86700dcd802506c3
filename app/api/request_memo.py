"""A GET question asked again in the same words is answered without being parsed again.

When a sweep starts, a thousand jobs send a few dozen distinct requests between them, each many
times over and nearly at once. Validating the query model and solving the route's dependencies
costs about twice what answering from the cache does. So each GET route of the datasets routers
remembers, per process, what each request it took asked (app.api.answer_path.Asked). The key is
the request as it came: path, query string, and the headers that the answer or the right to it
depend on. When the same request comes again, it goes straight to the answer path: 304, cache,
waiting for the same question being computed, or computing it.

An entry is trusted only under the stamp it was noted with (DatasetStates.stamp): nothing
committed since, by any process. Under that stamp the question's dataset, snapshot and presence
are what they were, and so is every token. Only a request that got as far as asking a question
is noted, so a refused one is checked every time it comes. With any other stamp, the request
takes the full route again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial

from fastapi import Request, Response

from app.api.answer_cache import DatasetStates
from app.api.answer_path import Asked, answer_asked
from app.api.bodies import BodyGuardRoute, Handler
from app.lru import LruCache
from app.observability.metrics import Metrics

# What the answer, or the right to it, depends on beyond the URL: gzip or not for the index,
# and the token (kept as its digest).
KEYED_HEADERS = ("accept-encoding", "authorization")
# Longer query strings are not noted, so that the memo stays small (long filters come by POST).
MEMO_QUERY_BYTES = 2048

RequestKey = tuple[str, bytes, str, str]


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
    if len(query) > MEMO_QUERY_BYTES:
        return None
    encoding, authorization = (request.headers.get(name, "") for name in KEYED_HEADERS)
    token = hashlib.sha256(authorization.encode()).hexdigest() if authorization else ""
    return request.scope["path"], query, encoding, token


class MemoizedRoute(BodyGuardRoute):
    """A route of the datasets routers: what its GET requests ask is remembered, as said above."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if "GET" not in (self.methods or ()):
            return handler

        async def remembering(request: Request) -> Response:
            key = request_key(request)
            if key is None:
                return await handler(request)
            memo: RequestMemo = request.app.state.request_memo
            states: DatasetStates = request.app.state.dataset_states
            # Taken first: a commit while the request is answered leaves what it noted stale.
            stamp = states.stamp()
            asked = memo.asked(key, stamp)
            if asked is not None:
                metrics: Metrics = request.app.state.metrics
                metrics.remembered.inc()
                return await answer_asked(request, asked)
            request.state.note_asked = partial(memo.note, key, stamp)
            return await handler(request)

        return remembering
