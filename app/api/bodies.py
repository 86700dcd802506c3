"""JSON request bodies: the token is checked before a byte is read, the size is bounded, and a
large body is parsed and validated in a worker thread, in slices.

FastAPI reads a body parameter whole, and parses it, before it runs any dependency, the token
check included: a 279 MB body without a token took the server to 1.1 GB before its 401. And it
parses on the event loop, where a few megabytes stall every other request. Routers are built
with `route_class=BodyGuardRoute`: for an endpoint with a JSON body parameter it checks the token
first, then reads at most `max_body_bytes`, then hands FastAPI the body already validated.
Endpoints that read their body themselves (manifest uploads, scan parts) have no body parameter
and are left alone: they bound what they read by `max_upload_bytes`.
"""

from __future__ import annotations

import email.message
import io
import json
from collections.abc import Callable, Coroutine
from typing import IO, Any

import ijson
from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from app.api.deps import check_token_first, needs_write_token
from app.api.middleware.request_body import declared_length
from app.config import Settings
from app.errors import InvalidRequestError, PayloadTooLargeError
from app.ingest.manifest import parser_reason
from app.ingest.surrogates import SurrogateGuard

# Below this a body is parsed on the event loop: the trip to a thread would cost more.
PARSE_IN_THREAD_ABOVE = 64 * 1024
# The parser reads this much at a time (see load_json).
PARSE_SLICE = 64 * 1024
YAJL_INTEGER_OVERFLOW = "parse error: integer overflow"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BodyGuardRoute(APIRoute):
    """An API route whose JSON body is read only once the request may be served."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        adapter = _body_adapter(self)
        writes = needs_write_token(self.dependant)

        async def guarded(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            await check_token_first(request, writes=writes)
            body = await read_body(request, settings.max_body_bytes)
            parsed: BaseModel | None = None
            if body and says_json(request):
                if len(body) > PARSE_IN_THREAD_ABOVE:
                    parsed = await run_in_threadpool(parse_body, adapter, body)
                else:
                    parsed = parse_body(adapter, body)
            return await handler(ReceivedRequest(request, body, parsed))

        return guarded


class ReceivedRequest(Request):
    """The request with its body read already; FastAPI's handler takes the body from here."""

    def __init__(self, request: Request, body: bytes, parsed: BaseModel | None) -> None:
        super().__init__(request.scope, request.receive)
        self._received = body
        self._parsed = parsed

    async def body(self) -> bytes:
        return self._received

    async def json(self) -> Any:
        # A model instance passes FastAPI's validation as it is: it is not validated twice.
        return self._parsed if self._parsed is not None else load_json(self._received)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body; 413 past `limit`, on the Content-Length before anything is read, or on
    the bytes as they arrive (a chunked body has no length)."""
    declared = declared_length(request.scope)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(adapter: TypeAdapter[Any], body: bytes) -> Any:
    """Parse and validate; 422 naming the problem (for the fields: the app's handler)."""
    try:
        data = load_json(body)
    except NotJsonError as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    return adapter.validate_python(data, from_attributes=True)


class NotJsonError(ValueError):
    """The document is not one valid JSON value; the message says why."""


def load_json(document: bytes | IO[bytes]) -> Any:
    """One JSON value, as json.loads would give it, parsed so that other threads keep running.

    A C parser (json.loads, pydantic's) holds the GIL from the first byte to the last: parsed
    in a worker thread, 20 MB still stalled the event loop for half a second. ijson reads its
    input a slice at a time through a Python `read` method, where the interpreter hands the GIL
    over to a thread that waits for it. About as fast as json.loads; NaN is refused.

    Where yajl, under ijson, would read a document otherwise than json.loads does, json.loads
    reads it instead, so that validation names the field at fault: a lone surrogate escape
    (`"\\ud800"`, which yajl decodes as `?` or pairs with the escape after it) and an integer
    past 64 bits (yajl's "integer overflow"). Only documents holding one pay for that.
    """
    stream = io.BytesIO(document) if isinstance(document, bytes) else document
    start = stream.tell()
    guarded = SurrogateGuard(stream)
    try:
        values = list(ijson.items(guarded, "", use_float=True, buf_size=PARSE_SLICE))
    except (ijson.JSONError, ijson.IncompleteJSONError) as exc:
        reason = parser_reason(exc)
        if not reason.startswith(YAJL_INTEGER_OVERFLOW):
            raise NotJsonError(reason) from None
        return _load_whole(stream, start)
    if len(values) != 1:  # pragma: no cover - ijson refuses an empty or a second value itself
        raise NotJsonError("expected exactly one JSON value")
    if guarded.first_lone_escape is not None:
        return _load_whole(stream, start)
    return values[0]


def _load_whole(stream: IO[bytes], start: int) -> Any:
    stream.seek(start)
    try:
        return json.load(stream)
    except ValueError as exc:  # e.g. thousands of digits, which Python refuses to convert
        raise NotJsonError(str(exc)) from None


def says_json(request: Request) -> bool:
    """Whether FastAPI would parse the body as JSON: a JSON content type (no type: no JSON)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"request body exceeds the limit of {limit} bytes (SEIZURE_STATS_MAX_BODY_BYTES)"
    )


def _body_params(dependant: Dependant) -> list[Any]:
    nested = (param for sub in dependant.dependencies for param in _body_params(sub))
    return [*dependant.body_params, *nested]


def _body_adapter(route: APIRoute) -> TypeAdapter[Any]:
    """The validator of the route's body: one pydantic model, the whole body (not embedded)."""
    params = _body_params(route.dependant)
    annotation = params[0].field_info.annotation if len(params) == 1 else None
    if (
        not isinstance(annotation, type)
        or not issubclass(annotation, BaseModel)
        or getattr(params[0].field_info, "embed", False)
    ):
        raise TypeError(f"{route.path}: a guarded JSON body must be one pydantic model")
    return TypeAdapter(annotation)
