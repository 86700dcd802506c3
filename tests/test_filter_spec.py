"""Every surface offers every declared filter (seizure_stats.schemas.filters.FILTERS), and every weighting.

A filter is declared once; these walk the declaration and fail when a surface lacks one of
them: the OpenAPI parameters and POST bodies, the CLI, the client, the dashboard form, the docs.
"""

from __future__ import annotations

import inspect
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import click
import pytest
from fastapi.testclient import TestClient

from app.cli import main
from seizure_stats.client import SeizureStatsClient
from seizure_stats.labels import Weighting
from seizure_stats.schemas.filters import FILTER_FIELDS, FILTERS, NAME_FILTERS
from seizure_stats.schemas.questions import WEIGHTINGS
from tests.support import manifests
from tests.support.uploads import load

README = Path(__file__).resolve().parents[1] / "README.md"
QUESTIONS = ("stats", "balanced", "balanced/index", "breakdown", "histogram")
CLI_COMMANDS = ("stats", "balanced")
CLIENT_METHODS = ("stats", "balanced", "balanced_index")


def test_the_declaration_names_each_filter_once() -> None:
    assert len(set(FILTER_FIELDS)) == len(FILTERS)
    assert all(re.fullmatch("[a-z][a-z_]*", name) for name in FILTER_FIELDS)
    assert all(spec.help and spec.selects for spec in FILTERS)
    assert all(spec.label and spec.placeholder for spec in NAME_FILTERS)


def test_openapi_lists_every_filter_with_its_help(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for question in QUESTIONS:
        path = schema["paths"][f"/api/v1/datasets/{{dataset}}/{question}"]
        parameters = {p["name"]: p for p in path["get"]["parameters"] if p["in"] == "query"}
        body_ref = path["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = components[body_ref.rsplit("/", 1)[1]]
        assert body.get("additionalProperties") is False, question
        for spec in FILTERS:
            assert spec.name in parameters, (question, spec.name)
            assert spec.help in parameters[spec.name]["description"], (question, spec.name)
            assert schema_types(parameters[spec.name]["schema"]) == (
                {"array"} if spec.many else {spec_type(spec), "null"}
            ), (question, spec.name)
            assert spec.name in body["properties"], (question, spec.name)
            assert spec.help in body["properties"][spec.name]["description"], question


def schema_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a parameter's schema allows (`anyOf` for an optional one-value one)."""
    return {str(s.get("type")) for s in schema.get("anyOf", [schema])}


def spec_type(spec: Any) -> str:
    return "string" if spec.choices else "integer"


def test_the_cli_has_an_option_for_every_filter() -> None:
    for name in CLI_COMMANDS:
        command = main.commands[name]
        options = {opt: param for param in command.params for opt in param.opts}
        for spec in FILTERS:
            option = options.get(spec.option)
            assert isinstance(option, click.Option), (name, spec.option)
            assert option.multiple is spec.many, (name, spec.option)
            assert spec.help in (option.help or ""), (name, spec.option)


def test_the_client_takes_every_filter_as_a_keyword() -> None:
    for name in CLIENT_METHODS:
        parameters = inspect.signature(getattr(SeizureStatsClient, name)).parameters
        for spec in FILTERS:
            assert spec.name in parameters, (name, spec.name)
            assert parameters[spec.name].kind is inspect.Parameter.KEYWORD_ONLY
            assert parameters[spec.name].default is None
    with SeizureStatsClient("http://127.0.0.1:9") as client, pytest.raises(TypeError, match="pat"):
        client.stats("x", pat=["a"])


class FormFields(HTMLParser):
    """The fields of the dashboard's filter form: name -> input types and select options."""

    def __init__(self) -> None:
        super().__init__()
        self.in_form = False
        self.fields: dict[str, set[str]] = {}
        self.options: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.in_form = found.get("id") == "filter-form"
        if not self.in_form:
            return
        if tag == "input" and "name" in found:
            self.fields.setdefault(found["name"], set()).add(found.get("type", "text"))
        if tag == "select":
            self._select = found.get("name")
            self.fields.setdefault(self._select or "", set()).add("select")
        if tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(found.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._select and data.strip() and self.options.get(self._select, [None])[-1] == "":
            self.options[self._select][-1] = data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        if tag == "select":
            self._select = None


def test_the_dashboard_form_has_a_field_for_every_filter(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    page = client.get("/datasets/small")
    assert page.status_code == 200, page.text
    form = FormFields()
    form.feed(page.text)
    for spec in FILTERS:
        expected = ("checkbox" if spec.many else "select") if spec.choices else "text"
        assert expected in form.fields.get(spec.name, set()), (spec.name, form.fields)
    assert form.options["weighting"] == list(WEIGHTINGS)
    for spec in FILTERS:
        if spec.choices and not spec.many:
            assert form.options[spec.name] == list(spec.choices)


def readme_filters() -> list[str]:
    text = README.read_text()
    section = text.split("### Filters", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def test_the_readme_table_lists_every_filter_in_order() -> None:
    assert readme_filters() == list(FILTER_FIELDS)


def test_the_weighting_schemes_on_the_wire_are_those_computed() -> None:
    assert tuple(Weighting) == WEIGHTINGS
    stats_weighting: Any = next(p for p in main.commands["stats"].params if p.name == "weighting")
    assert tuple(stats_weighting.type.choices) == WEIGHTINGS
