"""For PyTorch training jobs, without depending on PyTorch (needs numpy: the `numpy` extra).

- `pos_weight_tensor(answer)`: the `pos_weight` that `torch.nn.BCEWithLogitsLoss` takes, from a
  stats, balanced or fold answer; torch is imported only when it is called.
- `BalancedWindows(cache_dir, index)`: a map-style dataset over the balanced index, entry i
  being window i of the balanced selection, in the order of the existing balanced training
  dataset. Items are numpy arrays, which torch's DataLoader collates into tensors by itself.
"""

from __future__ import annotations

import importlib
import math
import operator
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, SupportsIndex

from seizure_stats.numpy_extra import numpy_missing
from seizure_stats.schemas.questions import IndexEntry

try:
    import numpy as np
except ModuleNotFoundError as missing:
    raise numpy_missing("seizure_stats.training") from missing

Array = np.ndarray[Any, np.dtype[Any]]
Float32Array = np.ndarray[Any, np.dtype[np.float32]]


class HasPosWeight(Protocol):
    """A stats or balanced answer, or a fold's part: anything with the service's pos_weight."""

    @property
    def pos_weight(self) -> float: ...


def pos_weight_of(answer: HasPosWeight | float) -> float:
    """The answer's pos_weight as a number, checked to be one a loss can use."""
    value = float(answer if isinstance(answer, int | float) else answer.pos_weight)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"pos_weight must be a positive finite number, got {value!r}")
    return value


def pos_weight_tensor(answer: HasPosWeight | float, *, device: Any = None) -> Any:
    """`torch.tensor([pos_weight], dtype=torch.float32)`: one weight for the one class, which
    BCEWithLogitsLoss broadcasts over targets of any shape (a batch of per-sample labels).

    Train on the balanced selection (BalancedWindows), and the weight is the balanced answer's
    (`client.balanced(...)`); train on every window of a subset, and it is the stats answer's.
    """
    value = pos_weight_of(answer)
    try:
        torch = importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(
            "pos_weight_tensor needs PyTorch, which seizure-stats-client does not install: "
            "pip install torch (or take the number from pos_weight_of(answer))"
        ) from exc
    return torch.tensor([value], dtype=torch.float32, device=device)


class BalancedWindows:
    """A map-style dataset over the balanced index: item i is `(window, labels)` of entry i,
    read from `cache_dir / cache_file`, as float32 numpy arrays of shapes (channels, samples)
    and (samples,); a file without `labels` gives zeros, as the existing dataset does.

    `index` is what `client.balanced_index_arrays(...)` or `client.balanced_index(...)` returns
    (or any iterable of (cache_file, window_idx) pairs), in dataset order.
    """

    def __init__(
        self,
        cache_dir: Path | str,
        index: Mapping[str, Any] | Iterable[IndexEntry] | Iterable[tuple[str, int]],
    ) -> None:
        self.cache_dir = Path(cache_dir)
        # numpy columns rather than a list of tuples: DataLoader workers share them without
        # copying, where touching a Python object would copy its memory page into each worker.
        self.cache_files, self.recording, self.window_idx = _columns(index)

    def __len__(self) -> int:
        return int(self.window_idx.size)

    def __getitem__(self, item: SupportsIndex) -> tuple[Float32Array, Float32Array]:
        cache_file, window_idx = self.entry(item)
        path = self.cache_dir / cache_file
        window = read_row(path, "windows", window_idx)
        if window is None:
            raise KeyError(f"{path}: no 'windows' array")
        labels = read_row(path, "labels", window_idx)
        if labels is None:
            labels = np.zeros(window.shape[-1], dtype=np.float32)
        return window.astype(np.float32), labels.astype(np.float32)

    def entry(self, item: SupportsIndex) -> tuple[str, int]:
        """Entry i of the index: (cache_file, window_idx)."""
        position = operator.index(item)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"index {operator.index(item)} out of range for {len(self)} entries")
        name = str(self.cache_files[self.recording[position]])
        return name, int(self.window_idx[position])


def read_row(path: Path, name: str, row: int) -> Array | None:
    """Row `row` of array `name` of an .npz file, or None when the file has no such array.

    Only the member's bytes up to the end of that row are read and inflated, where loading the
    array would inflate all of it (every window of the recording) for one window. The member's
    checksum covers the whole of it, so it goes unchecked here.
    """
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{name}.npy")
        except KeyError:
            return None
        with archive.open(info) as member:
            header = _row_layout(member)
            if header is None:
                return _load_row(path, name, row)
            shape, dtype = header
            if not 0 <= row < shape[0]:
                raise IndexError(f"{path}: {name} has {shape[0]} rows, not row {row}")
            row_bytes = dtype.itemsize * math.prod(shape[1:])
            member.seek(row * row_bytes, 1)
            data = member.read(row_bytes)
    if len(data) != row_bytes:
        raise ValueError(f"{path}: {name} ends within row {row}")
    return np.frombuffer(data, dtype=dtype).reshape(shape[1:])


def _row_layout(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]] | None:
    """The shape and dtype of a .npy member whose rows lie one after another in its bytes;
    None for any other (Fortran order, objects, no rows, a header version not read here)."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        return None
    if fortran_order or dtype.hasobject or not shape:
        return None
    return shape, dtype


def _load_row(path: Path, name: str, row: int) -> Array:
    """The row, from the whole array loaded."""
    with np.load(path, allow_pickle=False) as arrays:
        return np.asarray(arrays[name][row])


def _columns(
    index: Mapping[str, Any] | Iterable[IndexEntry] | Iterable[tuple[str, int]],
) -> tuple[Array, Array, Array]:
    """(cache_files, recording, window_idx) of an index given as columns or as entries."""
    if isinstance(index, Mapping):
        return (
            np.asarray(index["cache_files"], dtype=np.str_),
            np.asarray(index["recording"], dtype=np.int64),
            np.asarray(index["window_idx"], dtype=np.int64),
        )
    positions: dict[str, int] = {}
    recording: list[int] = []
    window_idx: list[int] = []
    for entry in index:
        name, idx = (entry.cache_file, entry.window_idx) if isinstance(entry, IndexEntry) else entry
        recording.append(positions.setdefault(name, len(positions)))
        window_idx.append(idx)
    return (
        np.asarray(list(positions), dtype=np.str_),
        np.asarray(recording, dtype=np.int64),
        np.asarray(window_idx, dtype=np.int64),
    )
