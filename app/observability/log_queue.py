"""Log records go through a bounded queue to a writer thread, so a stalled stderr stalls no request.

A `StreamHandler` writes in the caller's thread: on the event loop, an unread pipe or a blocking
container log driver froze every request once the pipe buffer was full. Here the caller only
enqueues; a full queue drops the record and counts it, and the writer says how many it lost
once it has caught up.
"""

from __future__ import annotations

import atexit
import copy
import logging
import queue
import threading
from logging.handlers import QueueHandler, QueueListener

logger = logging.getLogger("seizure_stats.logging")


# How long stopping waits for the writer to empty the queue; a stderr nobody reads must not
# keep the process from exiting (the writer thread is a daemon).
STOP_SECONDS = 5.0

Records = queue.Queue[logging.LogRecord | None]


class DropCount:
    """Records refused by a full queue: in all (for the metrics) and since the last notice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.unreported = 0

    def add(self) -> None:
        with self._lock:
            self.total += 1
            self.unreported += 1

    def take_unreported(self) -> int:
        with self._lock:
            count, self.unreported = self.unreported, 0
            return count


# One per process, like the logging module's own state: queues come and go with configurations.
DROPS = DropCount()


class DroppingQueueHandler(QueueHandler):
    """Enqueues without ever blocking; counts what a full queue refused."""

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            DROPS.add()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy safe to format in another thread: message merged, traceback already text.

        Unlike the standard `prepare`, the message is not pre-formatted, so the writer's
        formatter still sees the level, the logger and the extras of the record.
        """
        prepared = copy.copy(record)
        prepared.msg = record.getMessage()
        prepared.args = None
        if record.exc_info:
            prepared.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
        prepared.exc_info = None
        return prepared


class ReportingQueueListener(QueueListener):
    """Writes queued records; after a loss, one warning once the queue is empty again."""

    def __init__(self, records: Records, handler: logging.Handler) -> None:
        super().__init__(records, handler, respect_handler_level=True)
        self.records = records

    def handle(self, record: logging.LogRecord) -> None:
        super().handle(record)
        if self.records.empty() and (dropped := DROPS.take_unreported()):
            notice = logger.makeRecord(
                logger.name,
                logging.WARNING,
                __file__,
                0,
                "%d log records were dropped while the log output was blocked",
                (dropped,),
                None,
                extra={"dropped_records": dropped},
            )
            super().handle(notice)

    def stop_within(self, seconds: float) -> bool:
        """Like `stop`, but bounded; False if the writer is still stuck on a blocked output."""
        thread = self._thread
        if thread is None:
            return True
        self._thread = None
        try:
            self.records.put(None, timeout=seconds)  # QueueListener's end-of-records sentinel
        except queue.Full:
            return False
        thread.join(seconds)
        return not thread.is_alive()


class LogQueue:
    """The queue and writer thread of this process: one at a time, replaced by each setup."""

    current: LogQueue | None = None

    def __init__(self, handler: logging.Handler, capacity: int) -> None:
        records: Records = queue.Queue(maxsize=capacity)
        self.handler = DroppingQueueHandler(records)
        self.writer = handler
        self.listener = ReportingQueueListener(records, handler)


def start_log_queue(handler: logging.Handler, capacity: int) -> QueueHandler:
    """Stop the previous queue (writing what it holds); return the handler of a new one."""
    stop_log_queue()
    started = LogQueue(handler, capacity)
    started.listener.start()
    LogQueue.current = started
    return started.handler


def stop_log_queue() -> None:
    """Write the records still queued and stop the writer thread (safe to call twice).

    Loggers then write directly again, so the last lines of a shutdown are not lost.
    """
    running, LogQueue.current = LogQueue.current, None
    if running is None:
        return
    if not running.listener.stop_within(STOP_SECONDS):
        # Writing directly would block the caller on the writer's lock; the queue keeps
        # taking (and dropping) records, and the daemon writer ends with the process.
        return
    root = logging.getLogger()
    if running.handler in root.handlers:
        for record_filter in running.handler.filters:
            running.writer.addFilter(record_filter)
        root.handlers = [running.writer if h is running.handler else h for h in root.handlers]


def dropped_log_records() -> int:
    """Log records this process dropped because its log output was blocked."""
    return DROPS.total


atexit.register(stop_log_queue)
