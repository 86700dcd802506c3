"""Write transactions: run_write retries exactly the unique-key races, on the real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.db import WRITE_ATTEMPTS, is_sqlite, run_write, write_session
from app.errors import ConflictError
from app.models import Dataset, Scan, ScanPart

T = TypeVar("T")


class Counted:
    """A unit of work that counts the transactions it was run in."""

    def __init__(self, work: Callable[[Session, int], T]) -> None:
        self.work = work
        self.calls = 0

    def __call__(self, session: Session) -> T:
        self.calls += 1
        return self.work(session, self.calls)


def committed_dataset(factory: sessionmaker[Session], name: str) -> Dataset:
    with write_session(factory) as session:
        return catalog.create_dataset(session, name)


def dataset_count(factory: sessionmaker[Session]) -> int:
    with write_session(factory) as session:
        return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)


def test_the_attempt_count_is_three() -> None:
    assert WRITE_ATTEMPTS == 3


def test_a_taken_unique_key_is_retried_in_a_fresh_transaction(
    factory: sessionmaker[Session],
) -> None:
    winner = committed_dataset(factory, "taken")

    def insert_then_find(session: Session, attempt: int) -> Dataset:
        if attempt == 1:
            session.add(Dataset(name="left-behind"))
            session.flush()
            session.add(Dataset(name="taken"))  # what a loser of the race does
            session.flush()
        return catalog.get_or_create_dataset(session, "taken")

    work = Counted(insert_then_find)
    assert run_write(factory, work).id == winner.id
    assert work.calls == 2
    assert dataset_count(factory) == 1  # the first attempt was rolled back whole


def test_a_taken_composite_primary_key_is_retried(factory: sessionmaker[Session]) -> None:
    dataset = committed_dataset(factory, "ds")
    with write_session(factory) as session:
        scan = Scan(dataset_id=dataset.id, scan_key="s1", shard_count=2)
        session.add(scan)
        session.flush()
        session.add(ScanPart(scan_id=scan.id, shard_index=0, digest="first"))

    def insert_part(session: Session, attempt: int) -> str:
        if attempt == 1:
            session.add(ScanPart(scan_id=scan.id, shard_index=0, digest="second"))
            session.flush()
        stored = session.get(ScanPart, (scan.id, 0))
        assert stored is not None
        return stored.digest

    work = Counted(insert_part)
    assert run_write(factory, work) == "first"
    assert work.calls == 2


def test_it_gives_up_after_the_attempt_count(factory: sessionmaker[Session]) -> None:
    committed_dataset(factory, "taken")

    def always_collide(session: Session, _attempt: int) -> None:
        session.add(Dataset(name="taken"))
        session.flush()

    work = Counted(always_collide)
    with pytest.raises(IntegrityError):
        run_write(factory, work)
    assert work.calls == WRITE_ATTEMPTS
    assert dataset_count(factory) == 1


def test_other_integrity_errors_are_not_retried(factory: sessionmaker[Session]) -> None:
    def orphan_part(session: Session, _attempt: int) -> None:
        session.add(ScanPart(scan_id=987_654, shard_index=0, digest="x"))  # no such scan
        session.flush()

    work = Counted(orphan_part)
    with pytest.raises(IntegrityError):
        run_write(factory, work)
    assert work.calls == 1


def test_refusals_are_not_retried(factory: sessionmaker[Session]) -> None:
    committed_dataset(factory, "taken")
    work = Counted(lambda session, _attempt: catalog.create_dataset(session, "taken"))
    with pytest.raises(ConflictError, match="dataset 'taken' already exists"):
        run_write(factory, work)
    assert work.calls == 1


def _wait_for_lock_waiter(engine: Engine, deadline: float) -> None:
    """Until another backend waits on a row lock (the loser's insert of the winner's key)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.scalar(query):
                return
        time.sleep(0.01)
    raise AssertionError("the second writer never waited on the first one's key")


def test_a_concurrent_first_creation_is_retried(
    engine: Engine, factory: sessionmaker[Session]
) -> None:
    """Two writers create one new dataset at once: the loser's retry finds the winner's row.

    On Postgres the loser's insert waits on the winner's uncommitted key, then fails: one retry.
    On SQLite writers queue at BEGIN, so the second one finds the row at once: no retry.
    """
    flushed = threading.Event()
    release = threading.Event()

    def winner() -> int:
        with write_session(factory) as session:
            dataset = catalog.get_or_create_dataset(session, "raced")
            flushed.set()
            assert release.wait(30)
            return dataset.id

    loser = Counted(lambda session, _attempt: catalog.get_or_create_dataset(session, "raced").id)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(winner)
        assert flushed.wait(30)
        second = pool.submit(run_write, factory, loser)
        if is_sqlite(engine):
            time.sleep(0.3)  # the loser is queued at BEGIN IMMEDIATE by now
        else:
            _wait_for_lock_waiter(engine, time.monotonic() + 30)
        release.set()
        winner_id, loser_id = first.result(30), second.result(30)
    assert loser_id == winner_id
    assert loser.calls == (1 if is_sqlite(engine) else 2)
    assert dataset_count(factory) == 1
