"""Streaming, strict parsing of manifest.json into compact columns.

The manifest is read event by event (ijson), never loaded whole: a 10M-window manifest becomes a
few int32 arrays. Every problem is reported with the entry that has it, e.g.
`no_seizure[17].window_idx: must be a non-negative integer, got -3`. Over-long names, numbers
and gaps are refused at MAX_TOKEN_BYTES, before they cost more (app.ingest.token_limit).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson
import numpy as np

from app.errors import ManifestError, UnreadableManifestError
from app.ingest.names import MAX_FILE_NAME, cache_file_problem
from app.ingest.surrogates import MARKER, SurrogateGuard
from app.ingest.token_limit import MAX_TOKEN_BYTES, TokenLimitReader, TokenTooLongError
from seizure_stats.labels import CATEGORY_KEYS, Category

MAX_WINDOW_IDX = 2**31 - 1
HASH_FORMAT = b"seizure-stats/manifest-v1\n"
ProgressCallback = Callable[[int], None]


@dataclass
class CategoryColumns:
    """One category's entries in manifest order: recording index, window index, label counts."""

    recording: array[int] = field(default_factory=lambda: array("i"))
    window_idx: array[int] = field(default_factory=lambda: array("i"))
    n_pos: array[int] = field(default_factory=lambda: array("i"))
    n_samples: array[int] = field(default_factory=lambda: array("i"))

    def __len__(self) -> int:
        return len(self.recording)


@dataclass
class ParsedManifest:
    """A validated manifest. Recording indexes point into `recordings` (sorted names)."""

    recordings: list[str]
    columns: dict[Category, CategoryColumns]
    has_sample_counts: bool
    content_hash: str

    @property
    def window_counts(self) -> dict[Category, int]:
        return {category: len(cols) for category, cols in self.columns.items()}

    @property
    def total_windows(self) -> int:
        return sum(self.window_counts.values())

    def as_arrays(self, category: Category) -> dict[str, np.ndarray[Any, Any]]:
        cols = self.columns[category]
        arrays = {
            "recording": np.frombuffer(cols.recording, dtype=np.int32),
            "window_idx": np.frombuffer(cols.window_idx, dtype=np.int32),
        }
        if self.has_sample_counts:
            arrays["n_pos"] = np.frombuffer(cols.n_pos, dtype=np.int32)
            arrays["n_samples"] = np.frombuffer(cols.n_samples, dtype=np.int32)
        return arrays


class _CountingReader:
    """Wraps a binary stream to report how many bytes were consumed."""

    def __init__(self, stream: IO[bytes], progress: ProgressCallback | None) -> None:
        self._stream = stream
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        if self._progress is not None and chunk:
            self._progress(len(chunk))
        return chunk


def parse_manifest(
    stream: IO[bytes],
    *,
    full_threshold: float | None = None,
    progress: ProgressCallback | None = None,
) -> ParsedManifest:
    """Parse and validate a manifest from a binary stream (already gunzipped).

    `full_threshold`, when given, checks that entries carrying `n_pos`/`n_samples` sit in the
    category those counts imply.
    """
    guard = SurrogateGuard(_CountingReader(stream, progress))
    parser = _ManifestParser(guard)
    try:
        parser.run(ijson.basic_parse(TokenLimitReader(guard), use_float=False))
    except ManifestError:
        raise
    except UnicodeDecodeError as exc:
        raise UnreadableManifestError(f"manifest is not valid UTF-8: {exc.reason}") from exc
    except (ijson.JSONError, ijson.IncompleteJSONError) as exc:
        reason = parser_reason(exc)
        what = "UTF-8" if "UTF8" in reason else "JSON"
        raise UnreadableManifestError(f"manifest is not valid {what}: {reason}") from exc
    except (ValueError, SystemError) as exc:
        # Python refuses to convert integers of thousands of digits (a guard against quadratic
        # parsing); the C parser passes that on as a ValueError, sometimes wrapped in a
        # SystemError. No window index or count is anywhere near that long.
        cause = exc if isinstance(exc, ValueError) else exc.__cause__ or exc.__context__
        if not isinstance(cause, ValueError) or "digits" not in str(cause):
            raise
        raise ManifestError(
            f"manifest has a number of more than {sys.get_int_max_str_digits()} digits; "
            f"window indexes are integers from 0 to {MAX_WINDOW_IDX}"
        ) from exc
    return parser.finish(full_threshold)


def parser_reason(exc: BaseException) -> str:
    """The parser's message on one line (yajl reports it as bytes)."""
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())
    return text[:300] or type(exc).__name__


def _shown(text: str) -> str:
    """A string short enough to quote in a message."""
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(event: str, value: Any) -> str:
    if event == "number":
        return f"the number {value}"
    if event == "string":
        return f"the string {_shown(value)!r}"
    return {
        "start_map": "an object",
        "start_array": "an array",
        "boolean": "a boolean",
        "null": "null",
    }.get(event, event)


class _ManifestParser:
    def __init__(self, guard: SurrogateGuard) -> None:
        self.guard = guard
        self.columns: dict[Category, CategoryColumns] = {}
        self.names: dict[str, int] = {}
        self.samples_given: bool | None = None

    def run(self, events: Iterator[tuple[str, Any]]) -> None:
        step = events.__next__
        event, value = _next_or_error(step, "the manifest")
        if event != "start_map":
            raise ManifestError(
                "manifest must be a JSON object with the keys "
                f"{', '.join(CATEGORY_KEYS)}; got {_describe(event, value)}"
            )
        while True:
            event, value = _next_or_error(step, "the manifest object")
            if event == "end_map":
                break
            key = value
            if key not in CATEGORY_KEYS:
                raise ManifestError(
                    f"unknown category {_shown(key)!r}; expected one of {', '.join(CATEGORY_KEYS)}"
                )
            category = Category.from_key(key)
            if category in self.columns:
                raise ManifestError(f"category {key!r} appears twice in the manifest")
            self.columns[category] = self._read_list(step, key)
        try:
            event, value = step()
        except StopIteration:
            pass
        else:  # pragma: no cover - ijson rejects trailing values itself
            raise ManifestError(f"unexpected {_describe(event, value)} after the manifest object")
        missing = [key for key in CATEGORY_KEYS if Category.from_key(key) not in self.columns]
        if missing:
            raise ManifestError(
                f"manifest is missing the category {', '.join(map(repr, missing))} "
                "(write an empty list for a category without windows)"
            )

    def _read_list(self, step: Callable[[], tuple[str, Any]], key: str) -> CategoryColumns:
        event, value = _next_or_error(step, key)
        if event != "start_array":
            raise ManifestError(f"{key}: must be a list of entries, got {_describe(event, value)}")
        cols = CategoryColumns()
        rec_append, idx_append = cols.recording.append, cols.window_idx.append
        pos_append, samples_append = cols.n_pos.append, cols.n_samples.append
        names = self.names
        position = 0
        while True:
            event, value = _next_or_error(step, key)
            if event == "end_array":
                return cols
            where = f"{key}[{position}]"
            if event != "start_map":
                raise ManifestError(
                    f"{where}: must be an object with cache_file and window_idx, "
                    f"got {_describe(event, value)}"
                )
            cache_file = window_idx = n_pos = n_samples = None
            while True:
                event, name = _next_or_error(step, where)
                if event == "end_map":
                    break
                event, value = _next_or_error(step, where, name)
                if name == "cache_file":
                    if cache_file is not None:
                        raise ManifestError(f"{where}: key 'cache_file' appears twice")
                    if event != "string":
                        raise ManifestError(
                            f"{where}.cache_file: must be a string, got {_describe(event, value)}"
                        )
                    cache_file = value
                elif name == "window_idx":
                    if window_idx is not None:
                        raise ManifestError(f"{where}: key 'window_idx' appears twice")
                    window_idx = _index_value(where, "window_idx", event, value)
                elif name == "n_pos":
                    if n_pos is not None:
                        raise ManifestError(f"{where}: key 'n_pos' appears twice")
                    n_pos = _index_value(where, "n_pos", event, value)
                elif name == "n_samples":
                    if n_samples is not None:
                        raise ManifestError(f"{where}: key 'n_samples' appears twice")
                    n_samples = _index_value(where, "n_samples", event, value)
                else:
                    raise ManifestError(
                        f"{where}: unknown key {_shown(name)!r} (entries have cache_file and "
                        "window_idx, optionally n_pos and n_samples)"
                    )
            if cache_file is None:
                raise ManifestError(f"{where}: missing key 'cache_file'")
            if window_idx is None:
                raise ManifestError(f"{where}: missing key 'window_idx'")
            recording = names.get(cache_file)
            if recording is None:
                escape = self.guard.first_lone_escape
                if escape is not None and MARKER in cache_file:
                    raise ManifestError(
                        f"{where}.cache_file: contains the lone surrogate escape {escape} "
                        "(half of a UTF-16 pair, not a character)"
                    )
                problem = cache_file_problem(cache_file)
                if problem:
                    raise ManifestError(f"{where}.cache_file {_shown(cache_file)!r}: {problem}")
                recording = names[cache_file] = len(names)
            rec_append(recording)
            idx_append(window_idx)
            has_samples = n_pos is not None or n_samples is not None
            if self.samples_given is None:
                self.samples_given = has_samples
            if has_samples != self.samples_given:
                raise ManifestError(
                    f"{where}: n_pos and n_samples must be given for every entry or for none"
                )
            if has_samples:
                if n_pos is None or n_samples is None:
                    raise ManifestError(f"{where}: n_pos and n_samples go together")
                if n_samples == 0 or n_pos > n_samples:
                    raise ManifestError(
                        f"{where}: need 0 <= n_pos <= n_samples and n_samples > 0, "
                        f"got n_pos={n_pos}, n_samples={n_samples}"
                    )
                pos_append(n_pos)
                samples_append(n_samples)
            position += 1

    def finish(self, full_threshold: float | None) -> ParsedManifest:
        total = sum(len(cols) for cols in self.columns.values())
        if total == 0:
            raise ManifestError("manifest has no windows: every category list is empty")
        has_samples = bool(self.samples_given)
        sorted_names = sorted(self.names)
        # Recording indexes were handed out in reading order; renumber them by name so equal
        # content yields equal columns (and hash) whatever the key order of the file.
        renumber = np.empty(len(self.names), dtype=np.int32)
        for new_index, name in enumerate(sorted_names):
            renumber[self.names[name]] = new_index
        for cols in self.columns.values():
            _renumber_in_place(cols.recording, renumber)
        parsed = ParsedManifest(
            recordings=sorted_names,
            columns={c: self.columns[c] for c in Category},
            has_sample_counts=has_samples,
            content_hash="",
        )
        _check_duplicates(parsed)
        if has_samples and full_threshold is not None:
            _check_categories(parsed, full_threshold)
        parsed.content_hash = content_hash(parsed)
        return parsed


def _renumber_in_place(column: array[int], renumber: np.ndarray[Any, Any]) -> None:
    """column[i] = renumber[column[i]], a million entries at a time: no copy of a 10M column."""
    view = np.frombuffer(column, dtype=np.int32)  # writable: an array's buffer is
    step = 1 << 20
    for start in range(0, view.size, step):
        part = view[start : start + step]
        part[:] = renumber[part]


def _next_or_error(
    step: Callable[[], tuple[str, Any]], where: str, key: str | None = None
) -> tuple[str, Any]:
    """The next event at `where` (the value of `key`, if given)."""
    try:
        return step()
    except StopIteration:
        raise UnreadableManifestError(f"manifest ends inside {where}") from None
    except TokenTooLongError:
        if key == "cache_file":
            problem = f"{where}.cache_file: is longer than {MAX_FILE_NAME} characters"
        elif key is not None:
            problem = f"{where}.{_shown(key)}: a value of more than {MAX_TOKEN_BYTES} bytes"
        else:
            problem = f"{where}: more than {MAX_TOKEN_BYTES} bytes without a string quote"
        raise ManifestError(problem) from None


def _index_value(where: str, key: str, event: str, value: Any) -> int:
    if event != "number" or type(value) is not int or not 0 <= value <= MAX_WINDOW_IDX:
        raise ManifestError(
            f"{where}.{key}: must be an integer from 0 to {MAX_WINDOW_IDX}, "
            f"got {_describe(event, value)}"
        )
    return value


def _window_keys(parsed: ParsedManifest) -> np.ndarray[Any, np.dtype[np.int64]]:
    """One int64 per entry, (recording << 32) | window_idx, in category then manifest order."""
    keys = np.empty(parsed.total_windows, dtype=np.int64)
    start = 0
    for category in Category:
        arrays = parsed.as_arrays(category)
        # Filled in place: no temporary copies of a 10M-entry column.
        part = keys[start : start + arrays["recording"].size]
        part[:] = arrays["recording"]
        part <<= 32
        part |= arrays["window_idx"]
        start += part.size
    return keys


def _check_duplicates(parsed: ParsedManifest) -> None:
    # Sorting in place keeps a 10M-window check to one extra copy of the keys.
    ordered = _window_keys(parsed)
    ordered.sort()
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeats.size == 0:
        return
    key = int(ordered[repeats[0]])
    del ordered
    # Only now, with a duplicate to report, find where its two entries stand.
    first, second = np.flatnonzero(_window_keys(parsed) == key)[:2].tolist()
    cache_file, window_idx = parsed.recordings[key >> 32], key & 0xFFFFFFFF
    raise ManifestError(
        f"window ({cache_file!r}, {window_idx}) appears twice: "
        f"{_entry_name(parsed, first)} and {_entry_name(parsed, second)}"
    )


def _entry_name(parsed: ParsedManifest, flat_index: int) -> str:
    for category in Category:
        size = len(parsed.columns[category])
        if flat_index < size:
            return f"{category.key}[{flat_index}]"
        flat_index -= size
    raise IndexError(flat_index)  # pragma: no cover


def _check_categories(parsed: ParsedManifest, full_threshold: float) -> None:
    for category in Category:
        arrays = parsed.as_arrays(category)
        n_pos, n_samples = arrays["n_pos"], arrays["n_samples"]
        share = n_pos / n_samples
        implied = np.where(
            n_pos == 0,
            Category.NO_SEIZURE,
            np.where(share >= full_threshold, Category.FULL_SEIZURE, Category.PARTIAL_SEIZURE),
        )
        wrong = np.flatnonzero(implied != category)
        if wrong.size:
            i = int(wrong[0])
            raise ManifestError(
                f"{category.key}[{i}]: n_pos={int(n_pos[i])} of n_samples={int(n_samples[i])} "
                f"makes it {Category(int(implied[i])).key} at threshold {full_threshold}"
            )


def content_hash(parsed: ParsedManifest) -> str:
    """sha256 over a canonical form: sorted recording names, then each category's columns."""
    digest = hashlib.sha256(HASH_FORMAT)
    for name in parsed.recordings:
        digest.update(name.encode("utf-8") + b"\n")
    for category in Category:
        digest.update(f"{category.key}:{len(parsed.columns[category])}\n".encode())
        for column in parsed.as_arrays(category).values():
            # Little-endian int32 on every machine; no copy where that is already the layout.
            digest.update(np.ascontiguousarray(column, dtype="<i4").data)
    return "sha256:" + digest.hexdigest()
