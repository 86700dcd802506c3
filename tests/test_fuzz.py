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
from urllib.parse import quote

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
from tests.support import manifests

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


# Text that broke the service before, mixed into what schemathesis generates: lone surrogates
# (no database driver encodes them), NUL, digits that are not ASCII (str.isdigit() says yes, int()
# or the database disagrees), blank values and empty list items, numbers past the integer columns.
# Surrogates cannot travel in a URL (it is UTF-8), only as JSON escapes in a body.
URL_TEXT = st.one_of(
    st.sampled_from(["", " ", ",", "a,,b", "\x00", "\u00b2", "\u0663", "-1", "0"]),
    st.sampled_from([str(2**31), str(2**63), "9" * 30]),
    st.text(st.characters(categories=["Nd", "No", "Zs", "Cc", "Lo"]), max_size=4),
)
BODY_TEXT = st.one_of(
    URL_TEXT,
    st.sampled_from(["\ud800", "a\udfffb", "\ud83d", "\ude00\ud83d"]),
    st.text(st.characters(categories=["Cs", "Nd", "Lo"]), min_size=1, max_size=4),
)


@st.composite
def with_hostile_text(draw: st.DrawFn, value: Any, text: st.SearchStrategy[str]) -> Any:
    """`value` with some of its strings (keys of objects aside) replaced by hostile ones."""
    if isinstance(value, str):
        return draw(text) if draw(st.booleans()) else value
    if isinstance(value, list):
        return [draw(with_hostile_text(item, text)) for item in value]
    if isinstance(value, dict):
        return {key: draw(with_hostile_text(item, text)) for key, item in value.items()}
    return value


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

    @schema.hook
    def flatmap_query(context: Any, query: dict[str, Any] | None) -> Any:
        return st.one_of(st.just(query), with_hostile_text(query, URL_TEXT))

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        return st.one_of(st.just(body), with_hostile_text(body, BODY_TEXT))

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


# The dashboard is not in the OpenAPI document: its pages get requests of their own, built from
# their parameters with the same hostile text mixed into plausible values.
PAGE_PARAMETERS = (
    *("patient", "exclude_patient", "session", "recording", "category", "snapshot"),
    *("weighting", "basis", "beta", "by", "sort", "order", "offset", "a", "b", "bogus"),
)
PLAUSIBLE = ["aaaaaaaa", "s001", "seizure", "effective", "sample", "0.5", "recording", "desc", "1"]


def page_requests(snapshot: int) -> st.SearchStrategy[tuple[str, list[tuple[str, str]]]]:
    value = st.one_of(URL_TEXT, st.sampled_from([*PLAUSIBLE, str(snapshot)]))
    segment = value.map(lambda text: quote(text, safe=""))
    paths = st.one_of(
        st.sampled_from(["/", "/datasets/demo", "/datasets/demo/diff"]),
        segment.map(lambda name: f"/datasets/{name}"),
        st.tuples(segment, segment).map(
            lambda ab: f"/datasets/demo/snapshots/{ab[0]}/diff/{ab[1]}"
        ),
    )
    params = st.lists(st.tuples(st.sampled_from(PAGE_PARAMETERS), value), max_size=6)
    return st.tuples(paths, params)


def test_dashboard_pages_never_fail(client: TestClient) -> None:
    loaded = client.post("/api/v1/datasets/demo/snapshots", content=json.dumps(manifests.SMALL))
    assert loaded.status_code == 201, loaded.text

    @given(request=page_requests(loaded.json()["id"]))
    @settings(
        max_examples=EXAMPLES * 4,
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(request: tuple[str, list[tuple[str, str]]]) -> None:
        path, params = request
        response = client.get(path, params=params, follow_redirects=False)
        assert response.status_code < 500, (path, params, response.text[:500])
        if response.headers.get("content-type", "").startswith("application/json"):
            assert set(response.json()) == {"error", "detail"}, (path, params)

    run()
