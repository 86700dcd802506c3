"""The offline cache's files: the last answer received to each question, one file a question.

Under the cache directory (docs: README, "Offline answers"):

    answers/<service>/<dataset>/<kind>-<digest>.json        stats, balanced, folds
    answers/<service>/<dataset>/<kind>-<digest>.jsonl.gz    the balanced index, JSON lines
    answers/<service>/<dataset>/<kind>-<digest>.npz         the balanced index as numpy columns

`<service>` and `<dataset>` are the base URL and the dataset's name made safe for a file name,
followed by a short digest of the exact text (so two names never share a folder); `<digest>` is
the SHA-256 of the normalised question. Every file starts with a record of what it answers: the
service, the dataset, the question, when the answer was received, and the answer's snapshot and
content hash; a file that does not answer the question asked is never used.

Files are written to a temporary name beside their place and moved there in one step, so a
reader (another rank of the same job, say) sees the old answer or the new one, never a part.
A JSON or npz file is not synced to disk first: one that a power cut leaves torn fails its
reading (no closing brace, no zip directory) and is ignored like any unusable one. An index's
JSON lines would be read in part before their end showed torn, so they are synced.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seizure_stats.atomic_files import write_atomically
from seizure_stats.index_writer import IndexWriter

FORMAT = 1
# The record inside a cached npz, beside the arrays; numpy.load lists it and never reads it.
NPZ_RECORD = "seizure_stats_answer.json"


@dataclass(frozen=True)
class Question:
    """A question asked of one service about one dataset, in a form that does not depend on how
    it was asked: filter values split at commas, deduplicated and sorted, every option as the
    text it has in a query string, whether it travelled in a URL or in a POST body."""

    service: str
    dataset: str
    kind: str
    asked: Mapping[str, str | list[str]]

    @classmethod
    def of(
        cls,
        service: str,
        dataset: str,
        kind: str,
        filters: Mapping[str, list[str] | int | str],
        options: Mapping[str, Any],
    ) -> Question:
        asked: dict[str, str | list[str]] = {}
        for name, value in filters.items():
            if isinstance(value, list):
                asked[name] = sorted(
                    {part.strip() for item in value for part in str(item).split(",")}
                )
            else:
                asked[name] = query_text(value)
        for name, option in options.items():
            if option is not None:
                asked[name] = query_text(option)
        return cls(service.rstrip("/"), dataset, kind, dict(sorted(asked.items())))

    def pinned(self, snapshot: int) -> Question:
        """The same question about snapshot `snapshot`."""
        return replace(self, asked={**self.asked, "snapshot": str(snapshot)})

    def about_current(self) -> bool:
        return "snapshot" not in self.asked

    def digest(self) -> str:
        text = json.dumps(
            {"kind": self.kind, "asked": self.asked}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def answered_by(self, record: Record) -> bool:
        """Whether the answer a record describes answers this question: it is the same question,
        or this question pinned to the snapshot the record's answer was about (the answer to a
        question about the current snapshot, received while snapshot N was current, is the
        answer to the same question about snapshot N)."""
        asked = record.question
        if (asked.service, asked.dataset, asked.kind) != (self.service, self.dataset, self.kind):
            return False
        return asked.asked == self.asked or (
            asked.about_current() and asked.pinned(record.snapshot).asked == self.asked
        )


def query_text(value: object) -> str:
    """A value as a query string carries it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Record:
    """What a cached answer answers, and what it is about."""

    question: Question
    received_at: datetime
    snapshot: int
    content_hash: str
    # The answer's headers that a streamed answer needs again (its snapshot, unmatched values).
    headers: Mapping[str, str]
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "service": self.question.service,
            "dataset": self.question.dataset,
            "kind": self.question.kind,
            "question": self.question.asked,
            "received_at": self.received_at.isoformat(),
            "snapshot": self.snapshot,
            "content_hash": self.content_hash,
            "headers": dict(self.headers),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path) -> Record:
        if data.get("format") != FORMAT:
            raise ValueError(f"cache format {data.get('format')!r}, not {FORMAT}")
        question = Question(
            str(data["service"]), str(data["dataset"]), str(data["kind"]), dict(data["question"])
        )
        return cls(
            question,
            datetime.fromisoformat(data["received_at"]),
            int(data["snapshot"]),
            str(data["content_hash"]),
            {str(k): str(v) for k, v in data["headers"].items()},
            path,
        )


class UnusableCacheFile(Exception):
    """A cache file that cannot be read, or answers another question: treated as absent."""


class AnswerCache:
    """The files of one cache directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, question: Question, suffix: str) -> Path:
        folder = self.directory / "answers" / safe_name(question.service)
        return folder / safe_name(question.dataset) / f"{question.kind}-{question.digest()}{suffix}"

    # -- JSON answers --------------------------------------------------------------------------

    def store_json(self, question: Question, answer: Mapping[str, Any]) -> Record:
        path = self.path_of(question, ".json")
        record = self._record(question, path, answer["snapshot"], answer["content_hash"], {})
        body = json.dumps({"record": record.to_json(), "answer": answer}).encode()
        also = self._pinned(record, ".json")
        write_atomically(path, lambda handle: handle.write(body), also=also)
        return record

    def load_json(self, question: Question) -> tuple[Record, Any] | None:
        path = self.path_of(question, ".json")
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_bytes())
            record = self._checked(question, data["record"], path)
            return record, data["answer"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnusableCacheFile(f"{path}: {exc}") from exc

    # -- the balanced index as JSON lines --------------------------------------------------------

    def index_writer(
        self,
        question: Question,
        snapshot: int | None,
        content_hash: str | None,
        headers: Mapping[str, str],
    ) -> IndexWriter:
        path = self.path_of(question, ".jsonl.gz")
        record = self._record(question, path, snapshot, content_hash, headers)
        return IndexWriter(record, also=self._pinned(record, ".jsonl.gz"))

    def load_index(
        self, question: Question
    ) -> tuple[Record, Iterator[str], Callable[[], None]] | None:
        """The record, the lines, and what closes the file (whether the lines are read or not)."""
        path = self.path_of(question, ".jsonl.gz")
        if not path.exists():
            return None
        # Left open for the lines to be read as they are wanted, until the caller closes it.
        handle = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115
        try:
            record = self._checked(question, json.loads(handle.readline()), path)
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            handle.close()
            raise UnusableCacheFile(f"{path}: {exc}") from exc
        return record, (line.rstrip("\n") for line in handle), handle.close

    # -- the balanced index as numpy columns -----------------------------------------------------

    def store_npz(
        self,
        question: Question,
        content: bytes,
        snapshot: int | None,
        content_hash: str | None,
        headers: Mapping[str, str],
    ) -> Record:
        """Keep the npz the service sent (its arrays compressed already), with the record added
        as one more member."""
        path = self.path_of(question, ".npz")
        record = self._record(question, path, snapshot, content_hash, headers)
        buffer = io.BytesIO(content)
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr(NPZ_RECORD, json.dumps(record.to_json()))
        also = self._pinned(record, ".npz")
        write_atomically(path, lambda handle: handle.write(buffer.getbuffer()), also=also)
        return record

    def load_npz(self, question: Question) -> tuple[Record, bytes] | None:
        path = self.path_of(question, ".npz")
        if not path.exists():
            return None
        try:
            content = path.read_bytes()
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                data = json.loads(archive.read(NPZ_RECORD))
            return self._checked(question, data, path), content
        except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
            raise UnusableCacheFile(f"{path}: {exc}") from exc

    # -- shared --------------------------------------------------------------------------------

    @staticmethod
    def _record(
        question: Question,
        path: Path,
        snapshot: object,
        content_hash: object,
        headers: Mapping[str, str],
    ) -> Record:
        if snapshot is None or content_hash is None:  # nothing to say what it is about
            raise ValueError("the answer names no snapshot or content hash")
        received_at = datetime.now(UTC)
        return Record(question, received_at, int(str(snapshot)), str(content_hash), headers, path)

    @staticmethod
    def _checked(question: Question, data: Mapping[str, Any], path: Path) -> Record:
        record = Record.from_json(data, path)
        if not question.answered_by(record):
            raise ValueError("the file answers another question")
        return record

    def _pinned(self, record: Record, suffix: str) -> Path | None:
        """Where the answer to a question about the current snapshot is the answer to the same
        question pinned to the snapshot it was about, too (a second name for the same file);
        None for a question that pins its snapshot already."""
        if not record.question.about_current():
            return None
        return self.path_of(record.question.pinned(record.snapshot), suffix)


def safe_name(text: str) -> str:
    """A folder name for a URL or dataset name: its safe characters, then a digest of it all."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:48]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
