"""The dataset page's balanced selection: what a training run keeps of the subset, computed by
the same core as the API's `/balanced` answer, for the ratios and seed asked in the address."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.dashboard.sections import hidden_fields
from app.errors import AppError
from app.models import Dataset, Snapshot
from app.queries.balanced import compute_balanced
from seizure_stats.schemas.questions import FILTER_FIELDS, BalancedQuery

# The page's parameters of the balanced form; `weighting` and `beta` are the subset's own.
BALANCED_OPTIONS = ("full_ratio", "background_ratio", "seed")
SHARED_OPTIONS = ("weighting", "beta")
DEFAULTS = {name: BalancedQuery.model_fields[name].default for name in BALANCED_OPTIONS}


def balanced_context(
    session: Session,
    dataset: Dataset,
    snapshot: Snapshot,
    filters: dict[str, Any],
    values: dict[str, str],
    page_query: str,
) -> dict[str, Any]:
    """The form's values and, once the form was sent (a ratio or seed is in the address), the
    selection or the reason there is none.

    Not computed otherwise: it reads every window of the subset, seconds on a large snapshot.
    """
    asked = {name: values[name] for name in BALANCED_OPTIONS if values.get(name)}
    pairs = hidden_fields(page_query, *BALANCED_OPTIONS)
    context: dict[str, Any] = {
        "balanced_values": {name: asked.get(name, str(DEFAULTS[name])) for name in DEFAULTS},
        "balanced": None,
        "balanced_errors": {},
    }
    if not asked:
        return context
    shared = {name: values[name] for name in SHARED_OPTIONS if values.get(name)}
    try:
        query = BalancedQuery.model_validate(filters | shared | asked | {"snapshot": snapshot.id})
    except ValidationError as exc:
        errors = {str(e["loc"][0]) if e["loc"] else "form": e["msg"] for e in exc.errors()}
        context["balanced_errors"] = errors
        return context
    try:
        context["balanced"] = compute_balanced(session, dataset, snapshot, query)
    except AppError as exc:
        context["balanced_errors"] = {"form": exc.detail}
    api_pairs = [(k, v) for k, v in pairs if k in (*FILTER_FIELDS, *SHARED_OPTIONS)]
    api_pairs += [*asked.items(), ("snapshot", str(snapshot.id))]
    context["balanced_url"] = f"/api/v1/datasets/{dataset.name}/balanced?" + urlencode(api_pairs)
    return context
