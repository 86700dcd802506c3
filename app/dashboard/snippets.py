"""Copy-paste snippets (curl and the Python client) that reproduce a dashboard question."""

from __future__ import annotations

import json
import shlex
from typing import Any

from seizure_stats.schemas.filters import FILTERS
from seizure_stats.schemas.questions import StatsQuery

# Past this many filter values a URL gets unwieldy; the snippets send a JSON body instead,
# as the Python client does.
MAX_URL_VALUES = 100
DEFAULTS: dict[str, Any] = {"weighting": "sqrt", "beta": 0.9999, "basis": "window"}


def query_options(query: StatsQuery) -> dict[str, Any]:
    """The non-filter options that differ from their defaults, plus the snapshot (pinned)."""
    options: dict[str, Any] = {"snapshot": query.snapshot} if query.snapshot else {}
    for name, default in DEFAULTS.items():
        value = getattr(query, name)
        if value != default:
            options[name] = value
    return options


def query_filters(query: StatsQuery) -> dict[str, Any]:
    """The filters set: lists of values, and the one-value settings (a fold's seed) as set."""
    return {
        spec.name: list(values) if spec.many else getattr(query, spec.name)
        for spec in FILTERS
        if (values := query.values_of(spec))
    }


def curl_snippet(base_url: str, dataset: str, query: StatsQuery) -> str:
    url = f"{base_url}/api/v1/datasets/{dataset}/stats"
    filters, options = query_filters(query), query_options(query)
    if sum(len(query.values_of(spec)) for spec in FILTERS) > MAX_URL_VALUES:
        body = json.dumps(filters | options)
        return (
            f"curl -s -X POST {shlex.quote(url)} \\\n"
            f"  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(body)}"
        )
    pairs = [(spec.name, value) for spec in FILTERS for value in query.values_of(spec)]
    pairs += [(name, str(value)) for name, value in options.items()]
    if not pairs:
        return f"curl -s {shlex.quote(url)}"
    lines = [f"curl -sG {shlex.quote(url)}"]
    lines += [f"  --data-urlencode {shlex.quote(f'{name}={value}')}" for name, value in pairs]
    return " \\\n".join(lines)


def python_snippet(base_url: str, dataset: str, query: StatsQuery) -> str:
    arguments = [repr(dataset)]
    arguments += [f"{name}={values!r}" for name, values in query_filters(query).items()]
    arguments += [f"{name}={value!r}" for name, value in query_options(query).items()]
    if len(", ".join(arguments)) <= 60:
        call = f"client.stats({', '.join(arguments)})"
    else:
        call = "client.stats(\n" + "".join(f"        {a},\n" for a in arguments) + "    )"
    return (
        "from seizure_stats.client import SeizureStatsClient\n"
        "\n"
        f"with SeizureStatsClient({base_url!r}) as client:\n"
        f"    stats = {call}\n"
        "print(stats.counts.total, stats.seizure_ratio, stats.pos_weight)"
    )
