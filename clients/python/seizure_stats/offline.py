"""Offline answers: the client keeps every answer to a question, and gives it back when the
service cannot answer, the way the Hugging Face hub's offline mode works.

- Every answer to a question (stats, balanced, the balanced index in either form, folds) is kept
  in the cache directory (seizure_stats.answer_cache): `SEIZURE_STATS_CACHE`, else
  `$XDG_CACHE_HOME/seizure-stats`, else `~/.cache/seizure-stats`.
- When the service stays unreachable, or answers 5xx, after the client's retries, the cached
  answer to the same question is returned instead, marked (`from_cache`) and logged as a warning.
  A 4xx is an answer, and never replaced: the question is wrong, not the service away.
- Offline (`SEIZURE_STATS_OFFLINE=1`, or `offline=True`), the client never sends a request.

What "current" means then: a question that names no snapshot gets the last answer received to
it, which is about the snapshot that was current when it was received; the service may have made
another one current since. A question that pins a snapshot gets an exact answer, since snapshots
never change; the last answer to the unpinned question about that snapshot serves it too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from seizure_stats.answer_cache import AnswerCache, Question, Record, UnusableCacheFile
from seizure_stats.errors import APIError, NotCachedError, ServiceUnavailableError
from seizure_stats.index_answers import snapshot_of
from seizure_stats.index_writer import IndexWriter

CACHE_ENV = "SEIZURE_STATS_CACHE"
OFFLINE_ENV = "SEIZURE_STATS_OFFLINE"
OFFLINE_MODE = f"offline mode ({OFFLINE_ENV}=1 or offline=True)"
# What a streamed answer says in its headers only, and says again from the cache.
KEPT_HEADERS = ("x-snapshot", "x-content-hash", "x-unmatched-filter", "x-unmatched-values")

logger = logging.getLogger("seizure_stats")
Result = TypeVar("Result")


def default_cache_dir() -> Path:
    """`SEIZURE_STATS_CACHE`, else `$XDG_CACHE_HOME/seizure-stats`, else ~/.cache/seizure-stats."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seizure-stats"


def cache_directory(chosen: Path | str | None) -> Path | None:
    """The cache directory chosen, else the default one; None, with a warning, when there is no
    home directory to find it in (HOME unset, and a user id the password database lacks)."""
    try:
        return Path(chosen).expanduser() if chosen is not None else default_cache_dir()
    except RuntimeError as exc:
        logger.warning(
            "no cache directory (%s): answers are not kept; set %s to keep them", exc, CACHE_ENV
        )
        return None


def offline_from_environment() -> bool:
    """Whether `SEIZURE_STATS_OFFLINE` asks for offline mode (1, true, yes or on)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in KEPT_HEADERS if name in headers}


@dataclass(frozen=True)
class Stream:
    """A streamed answer's headers and lines; `cached_at` when they come from the cache.
    `release` lets go of what the lines are read from (a connection, a file), read or not."""

    headers: Mapping[str, str]
    lines: Iterator[str]
    cached_at: datetime | None
    release: Callable[[], None]


class OfflineAnswers:
    """The client's use of its cache: keep answers, and give them back when it must."""

    def __init__(self, directory: Path | None, *, offline: bool) -> None:
        self.cache = AnswerCache(directory) if directory is not None else None
        self.offline = offline

    def json(self, question: Question, fetch: Callable[[], Any]) -> tuple[Any, datetime | None]:
        """A JSON answer, and when it was received if it comes from the cache."""

        def live() -> tuple[Any, datetime | None]:
            data = fetch()
            if self.cache is not None:
                self._keep(question, lambda cache: cache.store_json(question, data))
            return data, None

        def cached(cache: AnswerCache) -> tuple[Record, tuple[Any, datetime | None]] | None:
            found = cache.load_json(question)
            return None if found is None else (found[0], (found[1], found[0].received_at))

        return self._answer(question, live, cached)

    def stream(self, question: Question, open_live: Callable[[], Stream]) -> Stream:
        """A streamed answer of lines (the balanced index); kept once every line has arrived."""

        def live() -> Stream:
            stream = open_live()
            if self.cache is None:
                return stream
            lines = self._tee(question, stream.headers, stream.lines)

            def release() -> None:
                lines.close()
                stream.release()

            return Stream(stream.headers, lines, None, release)

        def cached(cache: AnswerCache) -> tuple[Record, Stream] | None:
            found = cache.load_index(question)
            if found is None:
                return None
            record, lines, release = found
            return record, Stream(record.headers, lines, record.received_at, release)

        return self._answer(question, live, cached)

    def npz(
        self, question: Question, fetch: Callable[[], tuple[Mapping[str, str], bytes]]
    ) -> tuple[Mapping[str, str], bytes, datetime | None]:
        """An npz answer (the balanced index as numpy columns): headers, bytes, cached_at."""

        def live() -> tuple[Mapping[str, str], bytes, datetime | None]:
            headers, content = fetch()
            if self.cache is not None:
                self._keep(
                    question,
                    lambda cache: cache.store_npz(
                        question, content, *snapshot_of(headers), headers
                    ),
                )
            return headers, content, None

        def cached(
            cache: AnswerCache,
        ) -> tuple[Record, tuple[Mapping[str, str], bytes, datetime | None]] | None:
            found = cache.load_npz(question)
            if found is None:
                return None
            record, content = found
            return record, (record.headers, content, record.received_at)

        return self._answer(question, live, cached)

    # -- the rule ------------------------------------------------------------------------------

    def _answer(
        self,
        question: Question,
        live: Callable[[], Result],
        cached: Callable[[AnswerCache], tuple[Record, Result] | None],
    ) -> Result:
        if self.offline:
            found = self._look_up(cached)
            if found is None:
                raise NotCachedError(
                    f"{OFFLINE_MODE}: {self._where()} has no answer to this "
                    f"{question.kind} question about {question.dataset!r} from "
                    f"{question.service}; ask it once while the service is reachable"
                )
            self._announce(question, found[0], OFFLINE_MODE)
            return found[1]
        try:
            return live()
        except (ServiceUnavailableError, APIError) as exc:
            # A 4xx is an answer: the question is wrong. A 429 says the service is busy instead.
            if isinstance(exc, APIError) and exc.status_code < 500 and exc.status_code != 429:
                raise
            found = self._look_up(cached)
            if found is None:
                exc.add_note(f"{self._where()} has no answer to this question to fall back on")
                raise
            self._announce(question, found[0], f"the service cannot answer ({exc})")
            return found[1]

    def _look_up(
        self, cached: Callable[[AnswerCache], tuple[Record, Result] | None]
    ) -> tuple[Record, Result] | None:
        if self.cache is None:
            return None
        try:
            return cached(self.cache)
        except UnusableCacheFile as exc:
            logger.warning("ignoring an unusable cache file: %s", exc)
            return None

    def _where(self) -> str:
        if self.cache is None:
            return "the client's cache (turned off)"
        return f"the cache at {self.cache.directory}"

    @staticmethod
    def _announce(question: Question, record: Record, reason: str) -> None:
        if question.about_current():
            about = (
                f"snapshot {record.snapshot} ({record.content_hash}), the dataset's current "
                "snapshot when the answer was received; the service may have made another one "
                "current since"
            )
        else:
            about = f"snapshot {record.snapshot} ({record.content_hash}), as pinned"
        logger.warning(
            "%s; answering %s about %r from the cache, as received from %s at %s: %s (%s)",
            reason,
            question.kind,
            question.dataset,
            question.service,
            record.received_at.isoformat(timespec="seconds"),
            about,
            record.path,
        )

    def _keep(self, question: Question, store: Callable[[AnswerCache], Result]) -> Result | None:
        """Keeping an answer is a courtesy to a later run: a full disk, or an answer that does
        not name its snapshot, costs a warning, never the answer itself."""
        assert self.cache is not None
        try:
            return store(self.cache)
        except (OSError, KeyError, ValueError) as exc:
            logger.warning("could not keep the %s answer: %s", question.kind, exc)
            return None

    def _tee(
        self, question: Question, headers: Mapping[str, str], lines: Iterator[str]
    ) -> Generator[str]:
        """The lines as they arrive, written to the cache on the way; kept only when complete.
        The cache file is started with the first line (or at the end of an empty index), so an
        answer opened and never read leaves nothing behind."""
        kept: IndexWriter | None = None
        started = complete = False
        try:
            for line in lines:
                if not started:
                    started, kept = True, self._start_index(question, headers)
                if kept is not None:
                    try:
                        kept.write_line(line)
                    except OSError as exc:
                        logger.warning("could not keep the index: %s", exc)
                        kept.discard()
                        kept = None
                yield line
            if not started:  # no line at all: an empty index is an answer too
                kept = self._start_index(question, headers)
            complete = True
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
            if kept is not None:
                if complete:
                    writer = kept
                    self._keep(question, lambda _: writer.commit())
                else:
                    kept.discard()

    def _start_index(self, question: Question, headers: Mapping[str, str]) -> IndexWriter | None:
        snapshot, content_hash = snapshot_of(headers)
        return self._keep(
            question, lambda cache: cache.index_writer(question, snapshot, content_hash, headers)
        )
