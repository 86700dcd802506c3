"""Schemathesis against the app's own OpenAPI document: every operation, with a write token.

Each operation gets FUZZ_EXAMPLES generated requests (40 by default; valid and invalid ones),
sent in process on SQLite and Postgres. Every answer must be no 5xx, a status code the document
lists, of the documented content type, matching the documented schema and headers, and a read
documented as needing no token must not be refused without one. Generation is derandomised so
CI is repeatable; FUZZ_RANDOM=1 explores new cases (`FUZZ_EXAMPLES=300 FUZZ_RANDOM=1
scripts/test tests/test_fuzz.py`).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests import manifests

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
# The document does not depend on the database: read it from an app that never connects.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in create_app(Settings(database_url="sqlite://")).openapi()["paths"].items()
    for method in item
)


def point_at_real_data(path_parameters: dict[str, Any] | None) -> Any:
    """Half the time, name the loaded dataset and its snapshot, so requests get past the 404."""
    if not path_parameters:
        return st.just(path_parameters)
    known = dict(path_parameters)
    if "dataset" in known:
        known["dataset"] = "demo"
    if "snapshot_id" in known:
        known["snapshot_id"] = 1
    return st.sampled_from([path_parameters, known])


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_keeps_its_documented_contract(
    client: TestClient, method: str, path: str
) -> None:
    # schemathesis.pytest.from_fixture does not work with this pytest; a strategy per operation,
    # driven by Hypothesis inside the test, does the same.
    loaded = client.post("/api/v1/datasets/demo/snapshots", content=json.dumps(manifests.SMALL))
    assert loaded.status_code == 201, loaded.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        return point_at_real_data(path_parameters)

    auth = {"Authorization": client.headers["Authorization"]}

    @given(case=schema[path][method].as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()
