"""Names: which cache-file names are acceptable, and what a stem says about patient and session."""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_FILE_NAME = 255
CACHE_SUFFIX = "_windows.npz"
_TUSZ_STEM = re.compile(r"^(?P<patient>[^_]+)_(?P<session>s\d+)_(?P<token>t\d+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RecordingName(NamedTuple):
    stem: str
    patient: str
    session: str | None
    token: str | None


def cache_file_problem(name: str) -> str | None:
    """Why `name` is not a bare file name relative to the cache directory, or None if it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_FILE_NAME:
        return f"is longer than {MAX_FILE_NAME} characters"
    if "/" in name or "\\" in name:
        return "must be a bare file name (no directory separators)"
    if name in (".", ".."):
        return "must be a file name, not '.' or '..'"
    if _CONTROL.search(name):
        return "contains control characters"
    return None


def stem_of(cache_file: str) -> str:
    """`aaaaagxr_s018_t000_windows.npz` -> `aaaaagxr_s018_t000`."""
    if cache_file.endswith(CACHE_SUFFIX) and len(cache_file) > len(CACHE_SUFFIX):
        return cache_file[: -len(CACHE_SUFFIX)]
    if cache_file.endswith(".npz") and len(cache_file) > len(".npz"):
        return cache_file[: -len(".npz")]
    return cache_file


def parse_recording_name(cache_file: str) -> RecordingName:
    """Patient, session and token from a TUSZ stem; otherwise the patient is the part before `_`."""
    stem = stem_of(cache_file)
    match = _TUSZ_STEM.match(stem)
    if match:
        return RecordingName(stem, match["patient"], match["session"], match["token"])
    return RecordingName(stem, stem.split("_", 1)[0], None, None)
