"""Answers as the service sends them, for clients talking to a stand-in (httpx.MockTransport)."""

from __future__ import annotations

from typing import Any


def stats_body(snapshot: int = 1, content_hash: str = "sha256:00") -> dict[str, Any]:
    """A /stats answer: 1 partial and 3 no-seizure windows of one recording, pos_weight sqrt(3)."""
    return {
        "dataset": "d",
        "snapshot": snapshot,
        "content_hash": content_hash,
        "counts": {
            "no_seizure": 3,
            "partial_seizure": 1,
            "full_seizure": 0,
            "seizure": 1,
            "total": 4,
        },
        "samples": {"positive": None, "total": None},
        "seizure_ratio": 0.25,
        "sample_ratio": None,
        "weighting": "sqrt",
        "basis": "window",
        "beta": 0.9999,
        "pos_weight": 3**0.5,
        "recordings": 1,
        "missing_windows": 0,
        "missing_recordings": 0,
        "warnings": [],
    }
