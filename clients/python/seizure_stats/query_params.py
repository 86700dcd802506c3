"""How the client's questions travel: filters taken as keyword arguments, then sent as query
parameters, or in a POST body when they are too long for a URL."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from seizure_stats.answer_cache import query_text
from seizure_stats.schemas.filters import FILTER_FIELDS, FILTERS

# Past this many filter values, the filter travels in a POST body instead of the URL.
MAX_URL_VALUES = 100

FilterValue = str | Iterable[str] | None
# A one-value filter setting (`fold_seed`, `fold_stratify`).
SettingValue = int | str | None
# The filters a call sets: lists of values, and one-value settings as given.
Filters = dict[str, list[str] | int | str]
Params = list[tuple[str, str | int | float | bool | None]]
Method = TypeVar("Method", bound=Callable[..., Any])


def takes_filters(method: Method) -> Method:
    """Show every filter (seizure_stats.schemas.filters) as a keyword argument of the method,
    before its own options: the method takes them as `**named`."""
    signature = inspect.signature(method)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    first_option = next(i for i, p in enumerate(own) if p.kind is p.KEYWORD_ONLY)
    filters = [
        inspect.Parameter(
            spec.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation="FilterValue" if spec.many else "SettingValue",
        )
        for spec in FILTERS
    ]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own[:first_option], *filters, *own[first_option:]]
    )
    return method


def filters_named(method: str, named: Mapping[str, Any]) -> Filters:
    """The filters set, by name (a one-value setting as itself, the others as lists); an
    unknown name is refused as Python refuses a keyword."""
    unknown = sorted(set(named) - set(FILTER_FIELDS))
    if unknown:
        raise TypeError(f"{method}() got an unexpected keyword argument {unknown[0]!r}")
    chosen: Filters = {}
    for spec in FILTERS:
        value = named.get(spec.name)
        if not spec.many:
            if value is not None:
                chosen[spec.name] = value
        elif values := _as_list(value):
            chosen[spec.name] = values
    return chosen


def balanced_options(
    snapshot: int | None, full_ratio: float, background_ratio: float, seed: int, strict: bool
) -> dict[str, Any]:
    """The options of a question about the balanced selection (its counts or its index)."""
    return {
        "snapshot": snapshot,
        "full_ratio": full_ratio,
        "background_ratio": background_ratio,
        "seed": seed,
        "strict": strict,
    }


def too_long_for_a_url(filters: Filters) -> bool:
    return sum(len(v) if isinstance(v, list) else 1 for v in filters.values()) > MAX_URL_VALUES


def body(filters: Filters, options: Mapping[str, Any]) -> dict[str, Any]:
    """A question as a POST body: the options left unset are left out."""
    return filters | _drop_none(options)


def params(filters: Filters, options: Mapping[str, Any]) -> Params:
    """A question as query parameters: one a filter value, then the options set."""
    chosen: Params = [
        (name, value)
        for name, values in filters.items()
        for value in (values if isinstance(values, list) else [str(values)])
    ]
    chosen += [(key, query_text(value)) for key, value in _drop_none(options).items()]
    return chosen


def _as_list(value: FilterValue) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _drop_none(options: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}
