"""Patient-level cross-validation folds of a dataset, with the numbers of each fold's parts."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from app.api.answer_cache import Answer, make_options_question
from app.api.answer_path import send_answer
from app.api.heavy import dataset_state
from app.api.routers import questions_router
from app.models import Dataset, Snapshot
from app.queries.fold_report import compute_folds, fold_options
from seizure_stats.schemas.folds import FoldsQuery, FoldsResponse

router = questions_router("folds")


@router.get(
    "/{dataset}/folds",
    summary="Patient-level cross-validation folds, with exact numbers of each fold's parts",
    description="The test folds of scikit-learn's StratifiedGroupKFold(n_splits=k, "
    "shuffle=True, random_state=seed) over the snapshot's windows, grouped by patient. For "
    "each fold: its patients, the stats of its test and training parts (the training part is "
    "`exclude_patient` of its patients) and the balanced selection of its training part. "
    "Presence does not move a patient; it changes the counts as in every answer.",
    response_model=FoldsResponse,
)
async def get_folds(
    dataset: str, request: Request, query: Annotated[FoldsQuery, Query()]
) -> Response:
    state = await dataset_state(request, dataset)
    question = make_options_question("folds", dataset, state, query.snapshot, fold_options(query))
    return await send_answer(request, dataset, question, partial(folds_answer, query))


def folds_answer(
    query: FoldsQuery, session: Session, dataset: Dataset, snapshot: Snapshot
) -> Answer:
    """Computed and serialised in the worker thread, as every answer is."""
    return Answer(compute_folds(session, dataset, snapshot, query).model_dump_json().encode())
