"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.answers import AnswerCache
from app.config import Settings
from app.db import read_session
from app.errors import InvalidRequestError


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_read_session(
    factory: Annotated[sessionmaker[Session], Depends(get_session_factory)],
) -> Iterator[Session]:
    with read_session(factory) as session:
        yield session


def get_answer_cache(request: Request) -> AnswerCache:
    cache: AnswerCache = request.app.state.answer_cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
AnswerCacheDep = Annotated[AnswerCache, Depends(get_answer_cache)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


def only_params(*allowed: str) -> Callable[[Request], None]:
    """Refuse query parameters the endpoint does not know, instead of silently ignoring a typo."""
    allowed_set = frozenset(allowed)

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed_set)
        if unknown:
            raise InvalidRequestError(
                f"unknown query parameter {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed_set)) or 'none'}"
            )

    return check
