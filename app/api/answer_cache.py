"""Answers as cacheable bytes: a per-process LRU keyed by snapshot, presence and question digest.

Snapshots are immutable, so an answer can only change when the question resolves to another
snapshot (the current pointer moved) or when presence changes (each presence update bumps the
dataset's `presence_version`). Both are in the key, and so in the ETag.

Which snapshot is current, and the presence version, are themselves kept per process while
the database reports no commit since (app.storage.commit_signal), so a warm answer needs no
query at all.
A write committed anywhere (this process, another worker, the CLI) is seen by the next request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.db import read_session
from app.errors import NotFoundError
from app.models import Dataset, Snapshot
from app.schemas.questions import FILTER_FIELDS, SubsetFilter
from app.storage.commit_signal import ChangeSignal

# (kind, dataset id, snapshot id, presence version, sha256 of the normalised question): a filter
# of 100,000 recording names costs 64 bytes here, not megabytes for as long as the entry lives.
CacheKey = tuple[str, int, int, int, str]

# What an entry costs beyond its body: the key's strings and tuple, the dict slot, the bytes
# object's header. Counted so that a budget of bytes also bounds many tiny answers.
ENTRY_OVERHEAD_BYTES = 512


class AnswerCache:
    """A small thread-safe LRU of serialised answers, bounded by entries and by bytes."""

    def __init__(self, max_entries: int, max_bytes: int = 64 * 1024**2) -> None:
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """What the entries held now count against the byte budget."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: CacheKey, body: bytes) -> None:
        cost = len(body) + ENTRY_OVERHEAD_BYTES
        if self._max <= 0 or cost > self._max_bytes:
            return
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._bytes -= len(replaced) + ENTRY_OVERHEAD_BYTES
            self._entries[key] = body
            self._bytes += cost
            while len(self._entries) > self._max or self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted) + ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True)
class DatasetState:
    dataset_id: int
    current_snapshot_id: int | None
    presence_version: int


class DatasetStates:
    """Per-process memory of each dataset's current snapshot and presence version."""

    def __init__(self, factory: sessionmaker[Session], changes: ChangeSignal) -> None:
        self._factory = factory
        self._changes = changes
        self._known: dict[str, tuple[object, DatasetState]] = {}
        self._lock = threading.Lock()
        # A write this process commits is forgotten at once, before any notification arrives.
        event.listen(factory, "after_commit", self._forget)

    def _forget(self, _session: Session) -> None:
        with self._lock:
            self._known.clear()

    def remembered(self, name: str) -> DatasetState | None:
        """The state, if nothing was committed since it was read."""
        with self._lock:
            entry = self._known.get(name)
        if entry is None or entry[0] != self._changes.token():
            return None
        return entry[1]

    def load(self, name: str) -> DatasetState:
        """Ask the database (one indexed row), and remember the answer."""
        if not catalog.DATASET_NAME.match(name):  # e.g. a NUL, which Postgres refuses outright
            raise NotFoundError(f"dataset {name[:140]!r} does not exist")
        token = self._changes.token()  # taken first: a commit racing the query makes it stale
        with read_session(self._factory) as session:
            row = session.execute(
                select(Dataset.id, Dataset.current_snapshot_id, Dataset.presence_version).where(
                    Dataset.name == name
                )
            ).one_or_none()
        if row is None:
            raise NotFoundError(f"dataset {name[:140]!r} does not exist")
        state = DatasetState(row.id, row.current_snapshot_id, row.presence_version)
        with self._lock:
            self._known[name] = (token, state)
        return state


@dataclass(frozen=True)
class Question:
    """What an answer depends on."""

    key: CacheKey
    snapshot_id: int
    pinned: bool  # the question named its snapshot, rather than "current"

    @property
    def presence_version(self) -> int:
        return self.key[3]

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(repr(self.key).encode()).hexdigest()[:32] + '"'


def make_question(kind: str, dataset: str, state: DatasetState, query: SubsetFilter) -> Question:
    pinned = getattr(query, "snapshot", None)
    snapshot_id = pinned if pinned is not None else state.current_snapshot_id
    if snapshot_id is None:
        raise NotFoundError(f"dataset {dataset!r} has no snapshot yet: import a manifest")
    normalized: dict[str, Any] = query.normalized().model_dump()
    options = query.model_dump(exclude={*FILTER_FIELDS, "snapshot"})
    text = json.dumps(normalized | options, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    key = (kind, state.dataset_id, snapshot_id, state.presence_version, digest)
    return Question(key, snapshot_id, pinned is not None)


def compute_answer(
    factory: sessionmaker[Session],
    dataset: str,
    question: Question,
    compute: Callable[[Session, Dataset, Snapshot], BaseModel],
) -> tuple[bytes, bool]:
    """Compute an answer afresh (the slow path, run in a worker thread).

    Returns the body and whether it may be cached under the question's key: the key names the
    presence version the question was asked at, and a presence update committed since then
    is already in this answer (it reads the database as it is now), so it belongs to no key.
    """
    with read_session(factory) as session:
        found = catalog.get_dataset(session, dataset)
        snapshot = catalog.get_snapshot(session, found, question.snapshot_id)
        body = compute(session, found, snapshot).model_dump_json().encode()
        return body, found.presence_version == question.presence_version
