"""A training job's start-up, two ways: asking the service, or the old in-process way.

    python -m bench.startup service --url URL --dataset NAME
    python -m bench.startup old --manifest manifest.json --cache-dir DIR

Both print one JSON line: pos_weight, how many windows the balanced dataset holds, seconds.
The service way never touches the cache directory; run it under strace to see (bench.run does).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def service_way(url: str, dataset: str) -> dict[str, object]:
    from seizure_stats.client import SeizureStatsClient

    start = time.perf_counter()
    with SeizureStatsClient(url) as client:
        stats = client.balanced(dataset)
        entries = [(e.cache_file, e.window_idx) for e in client.balanced_index(dataset)]
    return {
        "way": "service",
        "pos_weight": stats.pos_weight,
        "windows": len(entries),
        "seconds": time.perf_counter() - start,
    }


def old_way(manifest_path: Path, cache_dir: Path) -> dict[str, object]:
    """What the balanced training dataset does at start-up: read the manifest, keep entries whose
    file exists, draw, and compute the ratio (docs/design.md's algorithm, seed 42)."""
    start = time.perf_counter()
    manifest = json.loads(manifest_path.read_text())
    partial, full, background = (
        manifest["partial_seizure"],
        manifest["full_seizure"],
        manifest["no_seizure"],
    )
    rng = np.random.default_rng(42)
    kept = [e for e in partial if (cache_dir / e["cache_file"]).exists()]
    n_partial = len(kept)
    n_full = 0
    for entries, ratio in ((full, 0.3), (background, 2.5)):
        want = int(ratio * len(partial))
        if entries and want > 0:
            picks = rng.choice(len(entries), size=min(want, len(entries)), replace=False)
            chosen = [entries[i] for i in picks if (cache_dir / entries[i]["cache_file"]).exists()]
            if entries is full:
                n_full = len(chosen)
            kept.extend(chosen)
    order = np.arange(len(kept))
    rng.shuffle(order)
    p = (n_partial + n_full) / len(kept)
    weight = math.sqrt((1 - p) / p) if 0 < p < 0.5 else 1.0
    return {
        "way": "old",
        "pos_weight": weight,
        "windows": len(kept),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="way", required=True)
    service = sub.add_parser("service")
    service.add_argument("--url", required=True)
    service.add_argument("--dataset", required=True)
    old = sub.add_parser("old")
    old.add_argument("--manifest", type=Path, required=True)
    old.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args()
    if args.way == "service":
        result = service_way(args.url, args.dataset)
    else:
        result = old_way(args.manifest, args.cache_dir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
