"""Seeded TUSZ-like manifests at benchmark scale, written as manifest.json without holding them.

Usage: python -m bench.generate OUT.json --windows 10000000 [--seed 1] [--cache-dir DIR]
                                [--with-samples] [--per-recording 330]

About 330 windows a recording (--per-recording; 70 gives the many-recordings shape, 142,857
recordings of 17,857 patients at 10M windows); most recordings seizure-free; seizure recordings carry runs of
partial and full windows. With --cache-dir, an empty file per recording is created there (the
old in-process way checks file existence, so it needs them; contents are never read).
With --with-samples, every window carries n_pos and n_samples, as a scanned snapshot does (the
dashboard's histogram needs them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CATEGORIES = ("partial_seizure", "full_seizure", "no_seizure")
SAMPLES = 15360  # 60 s at 256 Hz


def recording_names(n: int, rng: np.random.Generator) -> list[str]:
    patients = [f"aa{i:06x}" for i in rng.permutation(max(1, n // 8))]
    return sorted(
        f"{patients[i % len(patients)]}_s{i // len(patients) + 1:03d}_t000_windows.npz"
        for i in range(n)
    )


def categories_of(n_windows: int, rng: np.random.Generator) -> np.ndarray:
    cats = np.full(n_windows, 2, dtype=np.int8)
    if rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 4))):
            length = int(rng.integers(2, 30))
            start = int(rng.integers(0, max(1, n_windows - length)))
            cats[start : start + length] = 0
            if length > 6:
                cats[start + 3 : start + length - 3] = 1
    return cats


def sample_counts(category: str, n: int, rng: np.random.Generator) -> list[int]:
    """Positive label samples per window, agreeing with the category (full: all of them)."""
    if category == "no_seizure":
        return [0] * n
    if category == "full_seizure":
        return [SAMPLES] * n
    return rng.integers(1, int(SAMPLES * 0.99), size=n).tolist()


def write_manifest(
    out: Path,
    windows: int,
    seed: int,
    cache_dir: Path | None,
    with_samples: bool = False,
    per_recording: int = 330,
) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    names = recording_names(max(1, windows // per_recording), rng)
    # One temporary file per category keeps memory flat; they are joined at the end.
    parts = {c: out.with_suffix(f".{c}.part") for c in CATEGORIES}
    handles = {c: parts[c].open("w") for c in CATEGORIES}
    counts = dict.fromkeys(CATEGORIES, 0)
    remaining = windows
    for i, name in enumerate(names):
        n = remaining if i == len(names) - 1 else min(per_recording, remaining)
        remaining -= n
        quoted = json.dumps(name)
        cats = categories_of(n, rng)
        for code, category in enumerate(CATEGORIES):
            idx = np.flatnonzero(cats == code)
            if idx.size == 0:
                continue
            positives = sample_counts(category, idx.size, rng) if with_samples else None
            text = ", ".join(
                f'{{"cache_file": {quoted}, "window_idx": {k}'
                + (f', "n_pos": {positives[j]}, "n_samples": {SAMPLES}}}' if positives else "}")
                for j, k in enumerate(idx.tolist())
            )
            handles[category].write((", " if counts[category] else "") + text)
            counts[category] += int(idx.size)
        if cache_dir is not None:
            (cache_dir / name).touch()
    for handle in handles.values():
        handle.close()
    with out.open("w") as manifest:
        manifest.write("{")
        for k, category in enumerate(CATEGORIES):
            manifest.write(("" if k == 0 else ", ") + f'"{category}": [')
            with parts[category].open() as part:
                while chunk := part.read(1 << 20):
                    manifest.write(chunk)
            manifest.write("]")
            parts[category].unlink()
        manifest.write("}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--windows", type=int, default=330_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--with-samples", action="store_true")
    parser.add_argument("--per-recording", type=int, default=330, help="windows a recording")
    args = parser.parse_args()
    if args.cache_dir:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
    counts = write_manifest(
        args.out, args.windows, args.seed, args.cache_dir, args.with_samples, args.per_recording
    )
    print(json.dumps({"file": str(args.out), "bytes": args.out.stat().st_size} | counts))


if __name__ == "__main__":
    main()
