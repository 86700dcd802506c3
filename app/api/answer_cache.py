"""Answers as cacheable bytes: a per-process LRU keyed by snapshot, presence and question digest.

Snapshots are immutable, so an answer can only change when the question resolves to another
snapshot (the current pointer moved) or when presence changes (each presence update bumps the
dataset's `presence_version`). Both are in the key, and so in the ETag; a question whose answer
does not depend on presence (a diff of two snapshots) keys None instead of the version.

Which snapshot is current, and the presence version, are themselves kept per process while
the database reports no commit since (app.storage.commit_signal), so a warm answer needs no
query at all.
A write committed anywhere (this process, another worker, the CLI) is seen by the next request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.db import read_session
from app.lru import LruCache
from app.models import Dataset, Snapshot
from app.storage.commit_signal import ChangeSignal
from seizure_stats.schemas.questions import FILTER_FIELDS, SubsetFilter

# (kind, dataset id, snapshot ids, presence version or None, sha256 of the normalised question):
# a filter of 100,000 recording names costs 64 bytes here, not megabytes for as long as the
# entry lives.
CacheKey = tuple[str, int, tuple[int, ...], int | None, str]

# What an entry costs beyond its body and headers: the key's strings and tuple, the dict slot,
# the bytes object's header. Counted so that a budget of bytes also bounds many tiny answers.
ENTRY_OVERHEAD_BYTES = 512


@dataclass(frozen=True)
class Answer:
    """An answer as sent: its bytes, their media type and the headers that describe them."""

    body: bytes
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def cost(self) -> int:
        described = sum(len(name) + len(value) for name, value in self.headers.items())
        return len(self.body) + described + ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True)
class StreamedAnswer:
    """An answer sent a chunk at a time, as it is formatted."""

    chunks: Iterator[bytes]
    media_type: str
    headers: Mapping[str, str]


class AnswerCache(LruCache[CacheKey, Answer]):
    """The serialised answers of one process, bounded by entries and by bytes."""

    def __init__(self, max_entries: int, max_bytes: int = 64 * 1024**2) -> None:
        super().__init__(max_entries, max_cost=max_bytes, cost=lambda answer: answer.cost)

    @property
    def size_bytes(self) -> int:
        """What the entries held now count against the byte budget."""
        return self.total_cost


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
        # A write this process commits is forgotten at once, before any notification arrives;
        # counted, so that a state read while it committed is not remembered either.
        self._writes = 0
        event.listen(factory, "after_commit", self._forget)

    def _forget(self, _session: Session) -> None:
        with self._lock:
            self._known.clear()
            self._writes += 1

    def stamp(self) -> object:
        """Equal stamps mean nothing was committed in between, by any process."""
        token = self._changes.token()
        with self._lock:
            return (token, self._writes)

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
            raise catalog.no_such_dataset(name)
        token = self._changes.token()  # taken first: a commit racing the query makes it stale
        with self._lock:
            writes = self._writes
        with read_session(self._factory) as session:
            row = session.execute(
                select(Dataset.id, Dataset.current_snapshot_id, Dataset.presence_version).where(
                    Dataset.name == name
                )
            ).one_or_none()
        if row is None:
            raise catalog.no_such_dataset(name)
        state = DatasetState(row.id, row.current_snapshot_id, row.presence_version)
        with self._lock:
            # A write of this process committed meanwhile: what was read may predate it, and
            # the signal's token may not show it yet (a notification arrives a moment later).
            if self._writes == writes:
                self._known[name] = (token, state)
        return state


@dataclass(frozen=True)
class Question:
    """What an answer depends on."""

    key: CacheKey
    pinned: bool  # the question named its snapshots, rather than "current"

    @property
    def snapshot_ids(self) -> tuple[int, ...]:
        return self.key[2]

    @property
    def snapshot_id(self) -> int:
        return self.key[2][0]

    @property
    def presence_version(self) -> int | None:
        return self.key[3]

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(repr(self.key).encode()).hexdigest()[:32] + '"'


def _digest(asked: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


def make_question(kind: str, dataset: str, state: DatasetState, query: SubsetFilter) -> Question:
    """A question about a subset, keyed by its normalised filter and its options."""
    normalized: dict[str, Any] = query.normalized().model_dump()
    options = query.model_dump(exclude={*FILTER_FIELDS, "snapshot"})
    pinned = getattr(query, "snapshot", None)
    return make_options_question(kind, dataset, state, pinned, normalized | options)


def make_options_question(
    kind: str, dataset: str, state: DatasetState, snapshot: int | None, options: dict[str, Any]
) -> Question:
    """A question keyed by its options alone: the folds, about a whole snapshot, ask it so."""
    snapshot_id = snapshot if snapshot is not None else state.current_snapshot_id
    if snapshot_id is None:
        raise catalog.no_snapshot_yet(dataset)
    key = (kind, state.dataset_id, (snapshot_id,), state.presence_version, _digest(options))
    return Question(key, snapshot is not None)


def make_diff_question(state: DatasetState, a: int, b: int, options: dict[str, Any]) -> Question:
    """A diff reads windows and rollups, never presence: only its two snapshots key it."""
    return Question(("diff", state.dataset_id, (a, b), None, _digest(options)), pinned=True)


def compute_answer(
    factory: sessionmaker[Session],
    dataset: str,
    question: Question,
    compute: Callable[[Session, Dataset, Snapshot], Answer | StreamedAnswer],
) -> tuple[Answer | StreamedAnswer, bool]:
    """Compute an answer afresh (the slow path, run in a worker thread).

    Returns the answer and whether it may be cached under the question's key: the key names the
    presence version the question was asked at, and a presence update committed since then
    is already in this answer (it reads the database as it is now), so it belongs to no key.
    """
    with read_session(factory) as session:
        found, snapshot = catalog.dataset_snapshot(session, dataset, question.snapshot_id)
        answer = compute(session, found, snapshot)
        asked = question.presence_version
        return answer, asked is None or found.presence_version == asked
