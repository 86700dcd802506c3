"""Reads whose cost follows the snapshot's size, run through the admission gate when it is large.

The routers hand over their work as a function of a session factory: a small snapshot's work
runs on the shared thread pool and engine, a large one's through the gate (app.api.admission), on
the heavy engine's connections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.api.admission import AdmissionGate, SnapshotSizes
from app.api.answer_cache import (
    DatasetState,
    DatasetStates,
    Question,
    make_diff_question,
    make_question,
)
from app.api.deps import session_factory_of
from app.api.single_flight import InFlight
from app.queries.filters import has_long_values
from seizure_stats.schemas.questions import SubsetFilter

T = TypeVar("T")
Work = Callable[[sessionmaker[Session]], T]


async def dataset_state(request: Request, dataset: str) -> DatasetState:
    """The dataset's current snapshot and presence version: from memory, or one indexed row
    (read once a request: app.api.request_memo may have read it before the route ran)."""
    waited: tuple[str, DatasetState] | None = getattr(request.state, "dataset_state", None)
    if waited is not None and waited[0] == dataset:
        return waited[1]
    states: DatasetStates = request.app.state.dataset_states
    state = states.remembered(dataset)
    if state is not None:
        return state
    # After a write, a sweep's thousand requests all find nothing remembered: one reads it,
    # and the others take it from memory, where it is only if no write came in between.
    in_flight: InFlight = request.app.state.in_flight
    key = ("dataset state", dataset)
    if await in_flight.wait_for(key) is not None:
        state = states.remembered(dataset)
    if state is None:
        with in_flight.computing(key):
            state = await run_in_threadpool(states.load, dataset)
    return state


async def ask_question(request: Request, kind: str, dataset: str, query: SubsetFilter) -> Question:
    """The question's key and ETag. Normalising and hashing a filter of 100,000 names takes
    about 0.1 s, so a long filter's is made in a worker thread, not on the event loop."""
    state = await dataset_state(request, dataset)
    if has_long_values(query):
        return await run_in_threadpool(make_question, kind, dataset, state, query)
    return make_question(kind, dataset, state, query)


async def ask_diff_question(request: Request, dataset: str, a: int, b: int, limit: int) -> Question:
    """The key and ETag of the diff from snapshot a to snapshot b."""
    state = await dataset_state(request, dataset)
    return make_diff_question(state, a, b, {"recording_limit": limit})


async def run_read(request: Request, snapshot_ids: Sequence[int | None], work: Work[T]) -> T:
    """Run `work` where its size says: straight away, or through the gate (429 when full)."""
    gate: AdmissionGate = request.app.state.admission
    sizes: SnapshotSizes = request.app.state.snapshot_sizes
    factory = session_factory_of(request)
    ids = [snapshot_id for snapshot_id in snapshot_ids if snapshot_id is not None]
    windows = sizes.known(ids)
    if windows is None:
        windows = await run_in_threadpool(sizes.load, factory, ids)
    if not gate.is_heavy(windows):
        return await run_in_threadpool(work, factory)
    heavy: sessionmaker[Session] = request.app.state.heavy_session_factory
    return await gate.run(partial(work, heavy))
