"""Answers as cacheable bytes: a per-process LRU keyed by snapshot, presence and normalised query.

Snapshots are immutable, so an answer can only change when the question resolves to another
snapshot (the current pointer moved) or when presence changes (each presence update bumps the
dataset's `presence_version`). Both are in the key, and so in the ETag.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import catalog
from app.errors import NotFoundError
from app.models import Dataset, Snapshot
from app.schemas import FILTER_FIELDS, SubsetFilter

CacheKey = tuple[str, int, int, int, str]


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str
    pinned: bool  # the question named its snapshot, rather than "current"


class AnswerCache:
    """A small thread-safe LRU of serialised answers."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: CacheKey, body: bytes) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._entries[key] = body
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class Question:
    """What an answer depends on, resolved with one small query."""

    key: CacheKey
    dataset_id: int
    snapshot_id: int
    pinned: bool

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(repr(self.key).encode()).hexdigest()[:32] + '"'


def resolve_question(session: Session, kind: str, dataset: str, query: SubsetFilter) -> Question:
    if not catalog.DATASET_NAME.match(dataset):
        raise NotFoundError(f"dataset {dataset[:140]!r} does not exist")
    row = session.execute(
        select(Dataset.id, Dataset.current_snapshot_id, Dataset.presence_version).where(
            Dataset.name == dataset
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"dataset {dataset[:140]!r} does not exist")
    pinned = getattr(query, "snapshot", None)
    snapshot_id = pinned if pinned is not None else row.current_snapshot_id
    if snapshot_id is None:
        raise NotFoundError(f"dataset {dataset!r} has no snapshot yet: import a manifest")
    normalized = query.normalized().model_dump()
    options = query.model_dump(exclude={*FILTER_FIELDS, "snapshot"})
    text = json.dumps(normalized | options, sort_keys=True)
    key = (kind, row.id, snapshot_id, row.presence_version, text)
    return Question(key, row.id, snapshot_id, pinned is not None)


def cached_answer(
    session: Session,
    cache: AnswerCache,
    kind: str,
    dataset: str,
    query: SubsetFilter,
    compute: Callable[[Session, Dataset, Snapshot], BaseModel],
) -> Answer:
    """The answer to `query`, from the cache or computed (and then cached)."""
    question = resolve_question(session, kind, dataset, query)
    body = cache.get(question.key)
    if body is None:
        found = catalog.get_dataset(session, dataset)
        snapshot = catalog.get_snapshot(session, found, question.snapshot_id)
        body = compute(session, found, snapshot).model_dump_json().encode()
        cache.put(question.key, body)
    return Answer(body, question.etag, question.pinned)
