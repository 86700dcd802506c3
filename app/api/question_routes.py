"""The GET and POST routes of a read question, both made from one declaration.

Every question about a subset is asked two ways: GET with the question in the query string (a
query model, which refuses unknown parameters), and POST with it in a JSON body, for filters too
long for a URL. Both hand the same question to the same `respond`. What only shapes the answer
(`format`) is a field of the GET model beside the question, and a query parameter of the POST.

The endpoints are made here rather than written out, so the two can never drift apart; their
names (`get_stats`, `post_stats`, ...) name the OpenAPI operations and stay as they were.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.answer_path import answer
from seizure_stats.schemas.questions import SubsetFilter, question_in

# Answers the question: (request, dataset, question, format or None) -> the response.
Respond = Callable[[Request, str, Any, Any], Awaitable[Response]]
POST_SUMMARY = "The same as GET, with the filter in a JSON body"


@dataclass(frozen=True)
class QuestionRoutes:
    """One question's path, models and OpenAPI text, from which both routes are made."""

    path: str
    name: str  # the routes are get_<name> and post_<name>
    question: type[SubsetFilter]  # the POST body
    respond: Respond
    summary: str
    params: type[BaseModel] | None = None  # the GET query model, when it holds more (format)
    description: str | None = None
    response_model: Any = None
    response_class: type[Response] = JSONResponse
    response_description: str = "Successful Response"
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)  # beyond the router's
    post_summary: str = POST_SUMMARY
    options: tuple[str, ...] = field(init=False)  # the fields of params beyond the question

    def __post_init__(self) -> None:
        params = self.params.model_fields if self.params is not None else {}
        options = tuple(name for name in params if name not in self.question.model_fields)
        if len(options) > 1:  # respond takes one: the format of the answer
            raise TypeError(f"{self.name}: one option beside the question at most, not {options}")
        object.__setattr__(self, "options", options)

    def add_to(self, router: APIRouter) -> None:
        common: dict[str, Any] = {
            "responses": self.responses,
            "response_model": self.response_model,
            "response_class": self.response_class,
        }
        router.add_api_route(
            self.path,
            self._get_endpoint(),
            methods=["GET"],
            name=f"get_{self.name}",
            summary=self.summary,
            description=self.description or "",
            response_description=self.response_description,
            **common,
        )
        router.add_api_route(
            self.path,
            self._post_endpoint(),
            methods=["POST"],
            name=f"post_{self.name}",
            summary=self.post_summary,
            **common,
        )

    def _get_endpoint(self) -> Callable[..., Awaitable[Response]]:
        model = self.params or self.question

        async def endpoint(dataset: str, request: Request, query: BaseModel) -> Response:
            asked = question_in(query, self.question) if self.params else query  # type: ignore[arg-type]
            chosen = getattr(query, self.options[0]) if self.options else None
            return await self.respond(request, dataset, asked, chosen)

        return with_parameters(endpoint, query=Annotated[model, Query()])

    def _post_endpoint(self) -> Callable[..., Awaitable[Response]]:
        extra = []
        for name in self.options:
            assert self.params is not None
            info = self.params.model_fields[name]
            option = Query(info.default, description=info.description)
            extra.append(parameter(name, info.annotation, default=option))

        async def endpoint(
            dataset: str, request: Request, query: BaseModel, **options: Any
        ) -> Response:
            chosen = options[self.options[0]] if self.options else None
            return await self.respond(request, dataset, query, chosen)

        return with_parameters(endpoint, query=self.question, extra=extra)


def answered_as_json(kind: str) -> Respond:
    """The respond of a question answered as one JSON document, with no format to choose."""

    async def respond(request: Request, dataset: str, query: Any, _format: None) -> Response:
        return await answer(request, kind, dataset, query)

    return respond


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def with_parameters(
    endpoint: Callable[..., Awaitable[Response]],
    *,
    query: Any,
    extra: list[inspect.Parameter] | None = None,
) -> Callable[..., Awaitable[Response]]:
    """Give `endpoint` the signature FastAPI reads: the dataset, the request, the question (of
    the model chosen at run time) and any options, each typed by its real class."""
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            parameter("dataset", str),
            parameter("request", Request),
            parameter("query", query),
            *(extra or []),
        ],
        return_annotation=Response,
    )
    return endpoint
