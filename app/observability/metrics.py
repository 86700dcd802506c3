"""Prometheus metrics: requests by route and status, imports, and snapshots per dataset.

Each application gets a registry of its own (several apps may live in one process, as in the
tests). With one uvicorn worker per container, no multiprocess mode is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db import read_session
from app.models import Dataset, Snapshot

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests that matched no route share one label value: a scanner cannot grow the series count.
UNMATCHED_ROUTE = "<unmatched>"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
IMPORT_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Manifests range from a few kilobytes (a test) to about a gigabyte (millions of windows).
IMPORT_BYTES_BUCKETS = tuple(float(4**k * 1024) for k in range(1, 12))
IMPORT_WINDOWS_BUCKETS = tuple(float(10**k) for k in range(1, 9))


class GateState(Protocol):
    """What the admission gate of heavy reads (app.api.admission) shows of itself."""

    @property
    def running(self) -> int: ...
    @property
    def waiting(self) -> int: ...

    peak_running: int
    refused: int


class Metrics:
    """The metrics of one application, in a registry of its own."""

    def __init__(
        self,
        factory: sessionmaker[Session] | None = None,
        dropped_log_records: Callable[[], int] | None = None,
        admission: GateState | None = None,
        answers_waiting: Callable[[], int] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "seizure_stats_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "seizure_stats_http_request_duration_seconds",
            "Time from request to the last byte of the answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "seizure_stats_http_requests_in_progress",
            "HTTP requests being answered right now.",
            registry=self.registry,
        )
        self.answers = Counter(
            "seizure_stats_answers",
            "Answers to read questions by where they came from: computed, the answer cache, or"
            " shared (the same question computed for another request in flight).",
            ["source"],
            registry=self.registry,
        )
        self.remembered = Counter(
            "seizure_stats_requests_remembered",
            "GET requests answered as the same request was before, without parsing it again"
            " (the request memo).",
            registry=self.registry,
        )
        self.import_seconds = Histogram(
            "seizure_stats_import_duration_seconds",
            "Time to receive, parse and store a manifest, by outcome (created, existing, failed).",
            ["outcome"],
            buckets=IMPORT_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.import_bytes = Histogram(
            "seizure_stats_import_size_bytes",
            "Size of imported manifests after gunzipping.",
            buckets=IMPORT_BYTES_BUCKETS,
            registry=self.registry,
        )
        self.import_windows = Histogram(
            "seizure_stats_import_windows",
            "Windows in each successfully imported manifest.",
            buckets=IMPORT_WINDOWS_BUCKETS,
            registry=self.registry,
        )
        if factory is not None:
            self.registry.register(DatasetCollector(factory))
        if dropped_log_records is not None:
            self.registry.register(DroppedLogsCollector(dropped_log_records))
        if admission is not None:
            self.registry.register(AdmissionCollector(admission))
        if answers_waiting is not None:
            Gauge(
                "seizure_stats_answers_waiting",
                "Requests waiting now for the same work in flight: an answer, a dataset's state.",
                registry=self.registry,
            ).set_function(answers_waiting)

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        label = route or UNMATCHED_ROUTE
        self.requests.labels(method, label, str(status)).inc()
        self.latency.labels(method, label).observe(seconds)

    def observe_import(
        self, outcome: str, seconds: float, size_bytes: int | None, windows: int | None
    ) -> None:
        self.import_seconds.labels(outcome).observe(seconds)
        if size_bytes is not None:
            self.import_bytes.observe(size_bytes)
        if windows is not None:
            self.import_windows.observe(windows)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class DroppedLogsCollector(Collector):
    """Log records dropped because stderr was blocked (counted by the process's log queue)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "seizure_stats_log_records_dropped",
            "Log records dropped because the log output (stderr) was blocked and the queue full.",
            value=self._count(),
        )


class AdmissionCollector(Collector):
    """The gate of heavy reads: how many run and wait now, the most that ever ran, refusals."""

    def __init__(self, gate: GateState) -> None:
        self._gate = gate

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        gate = self._gate
        for name, text, value in [
            ("running", "Heavy reads running now.", gate.running),
            ("waiting", "Heavy reads waiting for a slot now.", gate.waiting),
            ("running_peak", "The most heavy reads that ever ran at once.", gate.peak_running),
        ]:
            yield GaugeMetricFamily(f"seizure_stats_heavy_reads_{name}", text, value=value)
        yield CounterMetricFamily(
            "seizure_stats_heavy_reads_refused",
            "Heavy reads answered 429 busy: the queue was full or no slot freed in time.",
            value=gate.refused,
        )


class DatasetCollector(Collector):
    """Per-dataset gauges, read from the database at scrape time (they change on any replica)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declared without values, so registering does not query the database.
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshots, windows = self._families()
        current = (
            Snapshot.partial_windows + Snapshot.full_windows + Snapshot.no_seizure_windows
        ).label("windows")
        query = (
            select(Dataset.name, func.count(Snapshot.id))
            .select_from(Dataset)
            .outerjoin(Snapshot, Snapshot.dataset_id == Dataset.id)
            .group_by(Dataset.name)
        )
        current_query = (
            select(Dataset.name, current)
            .select_from(Dataset)
            .join(Snapshot, Snapshot.id == Dataset.current_snapshot_id)
        )
        try:
            with read_session(self._factory) as session:
                counts = session.execute(query).all()
                sizes = dict(session.execute(current_query).all())
        except SQLAlchemyError as exc:
            logger.warning("dataset metrics unavailable: %s", type(exc).__name__)
            return
        for name, count in counts:
            snapshots.add_metric([name], count)
            if name in sizes:
                windows.add_metric([name], sizes[name])
        yield snapshots
        yield windows

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "seizure_stats_snapshots", "Snapshots stored per dataset.", labels=["dataset"]
            ),
            GaugeMetricFamily(
                "seizure_stats_current_snapshot_windows",
                "Windows in each dataset's current snapshot.",
                labels=["dataset"],
            ),
        )
