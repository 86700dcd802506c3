"""Reading a cache file's `labels` member, and nothing else of it.

Only the zip directory and the `labels` member's bytes are read; `windows` is never touched.
The member is inflated in one call with zlib-ng when it is installed (several times faster on
these mostly-zero arrays) and with the standard library's zlib otherwise; its CRC is checked.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from app.scan.file_result import OK, FileResult, IssueCode
from app.scan.window_categories import categorize_labels

inflate_module: ModuleType
try:  # pragma: no cover - depends on the environment
    from zlib_ng import zlib_ng as inflate_module

    INFLATE = "zlib-ng"
except ImportError:  # pragma: no cover
    inflate_module = zlib
    INFLATE = "zlib"

LABELS_MEMBERS = ("labels.npy", "labels")
LOCAL_HEADER = struct.Struct("<4s22xHH")
LOCAL_MAGIC = b"PK\x03\x04"
# A labels member beyond this is not a cache file's mask; refuse it rather than exhaust memory.
MAX_LABELS_BYTES = 4 * 1024**3
NUMERIC_KINDS = "biuf"


class LabelsError(Exception):
    """The file cannot contribute windows; `code` says why in a word, `reason` in a sentence."""

    def __init__(self, code: IssueCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def load_labels(path: Path) -> tuple[np.ndarray[Any, Any], os.stat_result]:
    """The `labels` array of an NPZ file, and the file's stat as it was read."""
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise LabelsError(
                IssueCode.UNREADABLE, f"not a readable zip archive (truncated?): {exc}"
            ) from exc
        with archive:
            info = _labels_info(archive)
            raw = _member_bytes(handle, archive, info)
    return parse_npy(raw), stat


def _labels_info(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    for name in LABELS_MEMBERS:
        try:
            return archive.getinfo(name)
        except KeyError:
            continue
    members = ", ".join(sorted(archive.namelist())[:10]) or "none"
    raise LabelsError(IssueCode.NO_LABELS, f"no 'labels' member (members: {members})")


def _member_bytes(handle: Any, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.flag_bits & 0x1:
        raise LabelsError(IssueCode.UNREADABLE, "the labels member is encrypted")
    if info.file_size > MAX_LABELS_BYTES:
        raise LabelsError(
            IssueCode.BAD_LABELS, f"labels member of {info.file_size} bytes is implausibly large"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        try:  # other methods are rare in .npz files; the standard library knows them
            return archive.read(info)
        except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError) as exc:
            raise LabelsError(IssueCode.UNREADABLE, f"labels member: {exc}") from exc
    handle.seek(info.header_offset)
    header = handle.read(LOCAL_HEADER.size)
    if len(header) < LOCAL_HEADER.size or header[:4] != LOCAL_MAGIC:
        raise LabelsError(IssueCode.UNREADABLE, "labels member: bad local file header")
    _, name_length, extra_length = LOCAL_HEADER.unpack(header)
    handle.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
    data = handle.read(info.compress_size)
    if len(data) < info.compress_size:
        raise LabelsError(IssueCode.UNREADABLE, "labels member is truncated")
    raw: bytes
    if info.compress_type == zipfile.ZIP_STORED:
        raw = data
    else:
        inflater = inflate_module.decompressobj(-zlib.MAX_WBITS)
        try:
            # One byte past the declared size is enough to tell a lying header.
            raw = inflater.decompress(data, info.file_size + 1)
        except inflate_module.error as exc:
            raise LabelsError(
                IssueCode.UNREADABLE, f"labels member: inflate failed: {exc}"
            ) from exc
    if len(raw) != info.file_size:
        raise LabelsError(
            IssueCode.UNREADABLE,
            f"labels member inflates to {len(raw)} bytes, the archive says {info.file_size}",
        )
    if inflate_module.crc32(raw) != info.CRC:
        raise LabelsError(IssueCode.UNREADABLE, "labels member fails its CRC check (corrupt)")
    return raw


def parse_npy(raw: bytes) -> np.ndarray[Any, Any]:
    """An array over the bytes of a .npy member, without copying them."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            stream.seek(0)
            array: np.ndarray[Any, Any] = np.lib.format.read_array(stream, allow_pickle=False)
            return array
    except (ValueError, EOFError, SyntaxError) as exc:
        raise LabelsError(IssueCode.BAD_LABELS, f"labels is not a valid .npy array: {exc}") from exc
    if dtype.hasobject:
        raise LabelsError(IssueCode.BAD_LABELS, f"labels has dtype {dtype}, expected numbers")
    count = int(np.prod(shape, dtype=np.int64))
    offset = stream.tell()
    if len(raw) - offset != count * dtype.itemsize:
        raise LabelsError(
            IssueCode.BAD_LABELS,
            f"labels of shape {shape} needs {count * dtype.itemsize} bytes, "
            f"the member holds {len(raw) - offset}",
        )
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def count_positives(labels: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], int]:
    """Positive samples per window (int32) and samples per window, or why there are none.

    A sample is positive when `> 0` (categorize_labels). NaN is not `> 0`, but a mask holding
    NaN comes from a labelling that failed: such a file is refused whole (nan_labels) rather
    than letting its NaN rows pass for background.
    """
    if labels.ndim != 2:
        raise LabelsError(
            IssueCode.WRONG_RANK,
            f"labels has shape {labels.shape} ({labels.ndim} dimensions); "
            "expected (windows, samples)",
        )
    if labels.dtype.kind not in NUMERIC_KINDS:
        raise LabelsError(IssueCode.BAD_LABELS, f"labels has dtype {labels.dtype}, not numbers")
    n_windows, n_samples = (int(n) for n in labels.shape)
    if n_windows == 0:
        raise LabelsError(IssueCode.NO_WINDOWS, f"labels has shape {labels.shape}: no windows")
    if n_samples == 0:
        raise LabelsError(IssueCode.BAD_LABELS, f"labels has shape {labels.shape}: empty rows")
    n_pos = np.zeros(n_windows, dtype=np.int32)
    rows = _rows_with_nonzero_bytes(labels)
    if rows is None:
        return n_pos, n_samples
    # All-zero rows (most of a cache) hold no positive sample and no NaN; look at the rest only.
    subset = labels[rows]
    if labels.dtype.kind == "f":
        nan = np.isnan(subset)
        if nan.any():
            bad_rows = np.flatnonzero(rows)[nan.any(axis=1)]
            raise LabelsError(
                IssueCode.NAN_LABELS,
                f"labels hold {int(nan.sum())} NaN samples in {bad_rows.size} windows "
                f"(first: window {int(bad_rows[0])})",
            )
    _, counts, _ = categorize_labels(subset)
    n_pos[rows] = counts
    return n_pos, n_samples


def _rows_with_nonzero_bytes(labels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    """A mask of the rows holding any non-zero byte, or None when every byte is zero."""
    if not labels.flags.c_contiguous:
        mask: np.ndarray[Any, Any] = (labels != 0).any(axis=1)
        return mask if mask.any() else None
    row_bytes = labels.shape[1] * labels.dtype.itemsize
    word = np.uint64 if row_bytes % 8 == 0 else np.uint8
    words = labels.reshape(-1).view(np.uint8).view(word).reshape(labels.shape[0], -1)
    if not np.count_nonzero(words):
        return None
    rows: np.ndarray[Any, Any] = np.asarray(words.any(axis=1))
    return rows


def storable_reason(text: str) -> str:
    """An error message as text the service accepts: a path that is not valid UTF-8 (lone
    surrogates) and NUL written as escapes, at most 500 characters."""
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")[:500]


def read_cache_file(task: tuple[str, str, int, int]) -> FileResult:
    """Read one file for a scan (runs in a worker process); never raises for a bad file.

    `task` is (path, name, size, mtime_ns) from the directory listing; the result carries the
    size and mtime of the file as opened.
    """
    path, name, size, mtime_ns = task
    try:
        labels, stat = load_labels(Path(path))
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
        n_pos, n_samples = count_positives(labels)
    except LabelsError as exc:
        return FileResult(name, size, mtime_ns, exc.code, exc.reason)
    except OSError as exc:
        reason = storable_reason(f"cannot read: {exc}")
        return FileResult(name, size, mtime_ns, IssueCode.UNREADABLE, reason)
    except Exception as exc:  # a bad file must never stop a scan
        reason = storable_reason(f"{type(exc).__name__}: {exc}")
        return FileResult(name, size, mtime_ns, IssueCode.UNREADABLE, reason)
    return FileResult(name, size, mtime_ns, OK, "", n_samples, n_pos)
