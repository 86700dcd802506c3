"""Writing a manifest.json in the format existing training code reads.

`{"partial_seizure": [{"cache_file": ..., "window_idx": ...}, ...], "full_seizure": [...],
"no_seizure": [...]}` with entries in manifest order, byte for byte what `json.dumps` gives for
the same dict. Written to a temporary file beside the target and renamed, so a reader never
sees half a manifest.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from app.ingest.manifest import ParsedManifest
from seizure_stats.labels import Category

ENTRIES_PER_WRITE = 50_000


def write_manifest(parsed: ParsedManifest, path: Path) -> None:
    """Write `parsed` (cache_file and window_idx only) to `path`, atomically."""
    quoted = [json.dumps(name) for name in parsed.recordings]
    handle, temporary = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("{")
            for position, category in enumerate(Category):
                if position:
                    out.write(", ")
                out.write(f'"{category.key}": [')
                arrays = parsed.as_arrays(category)
                recording, window_idx = arrays["recording"], arrays["window_idx"]
                for start in range(0, len(recording), ENTRIES_PER_WRITE):
                    stop = start + ENTRIES_PER_WRITE
                    if start:
                        out.write(", ")
                    out.write(
                        ", ".join(
                            f'{{"cache_file": {quoted[r]}, "window_idx": {w}}}'
                            for r, w in zip(
                                recording[start:stop].tolist(),
                                window_idx[start:stop].tolist(),
                                strict=True,
                            )
                        )
                    )
                out.write("]")
            out.write("}")
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from other users' jobs
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
