"""Uploading manifests: to the app in-process (a TestClient) or to a live server (its base URL)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from tests.support.manifests import recordings_of

Manifest = Mapping[str, Any]


def snapshots_path(dataset: str) -> str:
    return f"/api/v1/datasets/{dataset}/snapshots"


def post_manifest(
    target: httpx.Client | str,
    dataset: str,
    manifest: Manifest | bytes,
    *,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> httpx.Response:
    """POST a manifest (a mapping, or the exact bytes to send) as a new snapshot of `dataset`.

    `timeout` is for a live server's URL; a client keeps its own.
    """
    content = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return _post(target, snapshots_path(dataset), token, headers, timeout, content=content)


def load(
    target: httpx.Client | str,
    dataset: str,
    manifest: Manifest,
    missing: Collection[str] = (),
    *,
    token: str | None = None,
    expect: Collection[int] = (201,),
) -> int:
    """Import `manifest` into `dataset` and mark the `missing` recordings absent; the snapshot id.

    The import must answer a status in `expect`: 201 a new snapshot, 200 one the dataset holds.
    """
    response = post_manifest(target, dataset, manifest, token=token)
    assert response.status_code in expect, response.text
    if missing:
        present = set(recordings_of(dict(manifest))) - set(missing)
        body = {"missing": sorted(missing), "present": sorted(present)}
        marked = _post(target, f"/api/v1/datasets/{dataset}/presence", token, None, 120, json=body)
        assert marked.status_code == 200, marked.text
    return int(response.json()["id"])


def _post(
    target: httpx.Client | str,
    path: str,
    token: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    **body: Any,
) -> httpx.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if isinstance(target, str):
        return httpx.post(target + path, headers=sent, timeout=timeout, **body)
    # A client has its own timeout (a TestClient has none to set).
    return target.post(path, headers=sent, **body)
