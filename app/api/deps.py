"""Dependencies shared by the routers.

Those that do no blocking work are `async def`: FastAPI runs a plain `def` dependency on the
thread pool, a hop per dependency per request that cost more than most answers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any, ParamSpec, get_type_hints

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session, sessionmaker

from app.api.answer_cache import AnswerCache
from app.auth import Scope, TokenIdentity, check_scope, identify
from app.config import Settings
from app.db import read_session
from app.errors import InvalidRequestError
from app.observability.metrics import Metrics

P = ParamSpec("P")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_factory_of(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    return session_factory_of(request)


def get_read_session(
    factory: Annotated[sessionmaker[Session], Depends(get_session_factory)],
) -> Iterator[Session]:
    with read_session(factory) as session:
        yield session


async def get_answer_cache(request: Request) -> AnswerCache:
    cache: AnswerCache = request.app.state.answer_cache
    return cache


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
AnswerCacheDep = Annotated[AnswerCache, Depends(get_answer_cache)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# For endpoints whose whole answer is read in one go, each made a `read_endpoint`; ones that
# answer from memory when they can open their session themselves (app.api.stats).
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def read_endpoint(endpoint: Callable[P, Any]) -> Callable[P, Response]:
    """An endpoint on ReadSessionDep, whose answer is serialised in its own thread, while its
    session is open, and returned as JSON bytes.

    FastAPI validates and serialises a returned model on the thread pool, a second trip after
    the endpoint's own, and closes the session (returning its connection to the pool) only
    after that. Under 200 clients, every thread was waiting for a connection while every
    connection was held by a request waiting for a thread: nothing moved until the pool's 30 s
    timeout, then 503s. Returned as a Response, the answer takes no second trip. FastAPI still
    reads the endpoint's own return annotation (through `functools.wraps`) for its OpenAPI.
    """
    adapter: TypeAdapter[Any] = TypeAdapter(get_type_hints(endpoint)["return"])

    @functools.wraps(endpoint)
    def serialized(*args: P.args, **kwargs: P.kwargs) -> Response:
        content = adapter.dump_json(endpoint(*args, **kwargs))
        return Response(content, media_type="application/json")

    return serialized


def read_route(
    router: APIRouter, path: str, **options: Any
) -> Callable[[Callable[P, Any]], Callable[P, Response]]:
    """Register a GET endpoint on ReadSessionDep: `router.get(path, **options)` of its
    read_endpoint, so that no listing can be registered without it."""

    def register(endpoint: Callable[P, Any]) -> Callable[P, Response]:
        serialized = read_endpoint(endpoint)
        router.get(path, **options)(serialized)
        return serialized

    return register


# -- tokens --------------------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API token from `seizure-stats token create` (scope `read` or `write`).",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _token_identity(request: Request, credentials: BearerDep, needed: Scope) -> TokenIdentity:
    """Verify the request's token once (cached on the request), then check its scope."""
    identity: TokenIdentity | None = getattr(request.state, "token_identity", None)
    if identity is None:
        presented = credentials.credentials if credentials is not None else None
        with read_session(session_factory_of(request)) as session:
            identity = identify(session, presented, needed)
        request.state.token_identity = identity
    check_scope(identity, needed)
    return identity


async def _verified(request: Request, credentials: BearerDep, needed: Scope) -> TokenIdentity:
    """The request's identity with its scope checked: verified in a worker thread (it reads the
    database) the first time, from the request after that. A request checked before its route's
    dependencies (check_token_first) then takes no trip through the thread pool for them, and
    stays unbroken up to where it asks its question (app.api.request_memo relies on it)."""
    identity: TokenIdentity | None = getattr(request.state, "token_identity", None)
    if identity is None:
        return await run_in_threadpool(_token_identity, request, credentials, needed)
    check_scope(identity, needed)
    return identity


async def require_write_token(request: Request, credentials: BearerDep) -> TokenIdentity:
    """Every write goes through this: 401 without a valid token, 403 without the write scope."""
    return await _verified(request, credentials, "write")


async def require_read_access(
    request: Request, settings: SettingsDep, credentials: BearerDep
) -> TokenIdentity | None:
    """Reads are open unless SEIZURE_STATS_REQUIRE_READ_TOKEN is set; then any valid token.

    Async so that an open read costs no trip through the thread pool.
    """
    if not settings.require_read_token:
        return None
    return await _verified(request, credentials, "read")


async def check_token_first(request: Request, *, writes: bool) -> None:
    """The token check a route's dependencies make, made before them: by a route that reads its
    body (app.api.bodies) or that answers a request it remembers (app.api.request_memo). The
    identity is cached on the request, so the dependencies, if they run, do not check again."""
    credentials = await bearer_scheme(request)
    if writes:
        await require_write_token(request, credentials)
    else:
        await require_read_access(request, request.app.state.settings, credentials)


# Endpoints that change anything take a `WriteTokenDep` parameter; routers of readable
# resources are built with `dependencies=[ReadAccess]`.
WriteTokenDep = Annotated[TokenIdentity, Depends(require_write_token)]
ReadAccess = Depends(require_read_access)


def needs_write_token(dependant: Dependant) -> bool:
    """Whether an endpoint (through any of its dependencies) requires a write token."""
    return any(
        sub.call is require_write_token or needs_write_token(sub) for sub in dependant.dependencies
    )


async def refuse_unknown_parameters(request: Request) -> None:
    """Refuse query parameters the route does not read, instead of silently ignoring a typo.

    What a route reads is taken from its own signature (a query model field by field), so the
    names allowed cannot drift from the parameters declared. A dependency of every router under
    /api/v1/datasets: it runs after the token check and before any parameter is validated.
    """
    unknown = set(request.query_params)
    if not unknown:
        return
    route = request.scope.get("route")
    allowed = query_parameter_names(route.dependant) if isinstance(route, APIRoute) else set()
    unknown -= allowed
    if unknown:
        raise unknown_parameters(unknown, allowed)


def unknown_parameters(unknown: Iterable[str], allowed: Iterable[str]) -> InvalidRequestError:
    return InvalidRequestError(
        f"unknown query parameter {', '.join(map(repr, sorted(unknown)))}; "
        f"allowed: {', '.join(sorted(allowed)) or 'none'}"
    )


def query_parameter_names(dependant: Dependant) -> set[str]:
    """Every query parameter an endpoint reads, those of a query model field by field."""
    names: set[str] = set()
    for param in dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names.update(field.alias or name for name, field in model.model_fields.items())
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= query_parameter_names(sub)
    return names
