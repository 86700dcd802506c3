"""The dataset page's cross-validation folds: k and seed asked in the address, each fold's
numbers computed by the same core as the API's `/folds` answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.errors import AppError
from app.models import Dataset, Snapshot
from app.queries.fold_report import compute_folds
from seizure_stats.schemas.folds import STRATIFY, FoldsQuery

# The form's parameters, named apart from the balanced form's `seed`; and the API's names.
FOLD_OPTIONS = ("folds_k", "folds_seed", "folds_stratify")
API_NAMES = {"folds_k": "k", "folds_seed": "seed", "folds_stratify": "stratify"}
SHARED_OPTIONS = ("weighting", "beta")
DEFAULTS = {name: str(FoldsQuery.model_fields[api].default) for name, api in API_NAMES.items()}


def folds_context(
    session: Session, dataset: Dataset, snapshot: Snapshot, values: dict[str, str]
) -> dict[str, Any]:
    """The form's values and, once the form was sent (k in the address), the folds or the
    reason there are none. Not computed otherwise: the first answer of a large snapshot sums
    every recording and places every patient."""
    asked = {name: values[name] for name in FOLD_OPTIONS if values.get(name)}
    context: dict[str, Any] = {
        "folds_values": {name: asked.get(name, DEFAULTS[name]) for name in FOLD_OPTIONS},
        "folds_stratify_choices": STRATIFY,
        "folds": None,
        "folds_errors": {},
    }
    if "folds_k" not in asked:
        return context
    shared = {name: values[name] for name in SHARED_OPTIONS if values.get(name)}
    fields = shared | {API_NAMES[name]: value for name, value in asked.items()}
    try:
        query = FoldsQuery.model_validate(fields | {"snapshot": snapshot.id})
    except ValidationError as exc:
        context["folds_errors"] = {
            _form_name(str(e["loc"][0]) if e["loc"] else "form"): e["msg"] for e in exc.errors()
        }
        return context
    try:
        context["folds"] = compute_folds(session, dataset, snapshot, query)
    except AppError as exc:
        context["folds_errors"] = {"form": exc.detail}
    pairs = [*fields.items(), ("snapshot", str(snapshot.id))]
    context["folds_url"] = f"/api/v1/datasets/{dataset.name}/folds?" + urlencode(pairs)
    return context


def _form_name(api_name: str) -> str:
    """The form field an error of the API's parameter belongs to."""
    return next((name for name, api in API_NAMES.items() if api == api_name), "form")
