"""Statistics and balanced selection of a dataset's subsets."""

from __future__ import annotations

from fastapi.responses import StreamingResponse

from app.api.question_routes import POST_SUMMARY, QuestionRoutes, answered_as_json
from app.api.routers import Responses, questions_router
from app.api.streams import stream_index
from seizure_stats.schemas.questions import (
    BalancedIndexParams,
    BalancedQuery,
    BalancedResponse,
    StatsQuery,
    StatsResponse,
)

router = questions_router("statistics")
INDEX_CONTENT: Responses = {
    200: {"content": {"application/x-ndjson": {}, "application/json": {}, "application/x-npz": {}}}
}
LONG_LISTS = POST_SUMMARY + " (for long recording lists)"

QuestionRoutes(
    "/{dataset}/stats",
    "stats",
    StatsQuery,
    answered_as_json("stats"),
    summary="Exact counts, seizure ratio and pos_weight of a subset",
    post_summary=LONG_LISTS,
    response_model=StatsResponse,
).add_to(router)

QuestionRoutes(
    "/{dataset}/balanced",
    "balanced",
    BalancedQuery,
    answered_as_json("balanced"),
    summary="What the balanced training dataset keeps of a subset: counts and pos_weight",
    response_model=BalancedResponse,
).add_to(router)

QuestionRoutes(
    "/{dataset}/balanced/index",
    "balanced_index",
    BalancedQuery,
    stream_index,
    params=BalancedIndexParams,
    summary="The kept (cache_file, window_idx) entries in dataset order, streamed",
    response_description="JSON lines, one entry per line (a JSON array with format=json; numpy "
    "columns with format=npz).",
    responses=INDEX_CONTENT,
    response_class=StreamingResponse,
).add_to(router)
