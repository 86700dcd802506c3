"""The values of the fold filters: `i/K` (test fold i of K folds) and the folds' seed.

Only pydantic and the standard library, like every wire schema: the client imports these.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

# What the folds are stratified by: the window category, or seizure (partial or full) or not.
StratifyChoice = Literal["category", "seizure"]
# numpy's RandomState, which shuffles the folds, takes 32-bit seeds.
MAX_FOLD_SEED = 2**32 - 1
# The most folds a question may ask for: making K folds costs about K² per patient (17,857
# patients take about 2 s in 10 folds, over a minute in 100), and cross-validation uses 5 or 10.
MAX_FOLDS = 20
# `i/K`: test fold i (0-based) of K folds. Nine digits each: anything longer is no fold count.
FOLD_VALUE = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")


def parse_fold(value: str) -> tuple[int, int]:
    """`i/K` as (i, K): test fold i (0-based) of K folds; refused unless 0 <= i < K and K >= 2."""
    match = FOLD_VALUE.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "fold_value",
            "must be i/K, test fold i (0-based) of K folds, e.g. 0/5; got {value}",
            {"value": repr(value[:80])},
        )
    index, k = int(match.group(1)), int(match.group(2))
    if k < 2:
        raise PydanticCustomError(
            "fold_k", "k must be at least 2 in {value}", {"value": repr(value)}
        )
    if k > MAX_FOLDS:
        raise PydanticCustomError(
            "fold_k",
            "k must be at most {most} in {value}",
            {"most": MAX_FOLDS, "value": repr(value)},
        )
    if index >= k:
        raise PydanticCustomError(
            "fold_index",
            "fold {index} is out of range for k={k}: 0 to {last}",
            {"index": index, "k": k, "last": k - 1},
        )
    return index, k


def canonical_fold(value: str) -> str:
    """`i/K` written one way (`00/05` is `0/5`), so equal questions compare equal."""
    index, k = parse_fold(value)
    return f"{index}/{k}"


def one_fold_count(values: list[str]) -> list[str]:
    """The values of one fold filter are folds of one split: the same K."""
    counts = sorted({parse_fold(value)[1] for value in values})
    if len(counts) > 1:
        raise PydanticCustomError(
            "fold_k_mixed",
            "every value of one fold filter must have the same K (one split), got K={counts}",
            {"counts": ", ".join(map(str, counts))},
        )
    return values


def refuse_boolean_seed(value: object) -> object:
    """JSON true and false are not seeds, though Python would take them for 1 and 0."""
    if isinstance(value, bool):
        raise PydanticCustomError("bool_seed", "must be a number, not a boolean")
    return value


FoldText = Annotated[str, AfterValidator(canonical_fold)]
FoldSeed = Annotated[
    Annotated[int, Field(ge=0, le=MAX_FOLD_SEED)] | None, BeforeValidator(refuse_boolean_seed)
]
