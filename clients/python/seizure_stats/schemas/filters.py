"""The subset filters, each declared once in FILTERS, and the wire model built from them.

Every surface derives its list of filters from FILTERS: the wire model (query parameters and
POST bodies alike), the SQL (app.queries.filters), the CLI options, the client's keyword
arguments, the dashboard form and the OpenAPI descriptions. Adding a filter is one entry here,
plus its row in the README's table. Only pydantic and the standard library: the client imports
this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from seizure_stats.schemas.fold_values import (
    MAX_FOLD_SEED,
    FoldSeed,
    FoldText,
    StratifyChoice,
    one_fold_count,
)

CategoryName = Literal["partial_seizure", "full_seizure", "no_seizure"]
CategoryChoice = Literal["partial_seizure", "full_seizure", "no_seizure", "seizure"]
CATEGORY_NAMES: tuple[str, ...] = get_args(CategoryName)
MAX_FILTER_VALUES = 100_000
LIST_HELP = "Repeat the parameter or separate values with commas."
# Half of a UTF-16 pair. JSON can write one alone ("\ud800") and Python reads it into a string,
# but it is no character: no driver can encode it for the database.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# What a filter's values name; app.queries.filters turns each into SQL over its own columns.
# `fold` filters name cross-validation folds of the snapshot's patients, and the two settings
# that shape those folds (their seed and what they are stratified by).
Target = Literal["patient", "session", "recording", "category", "fold"]


@dataclass(frozen=True)
class FilterSpec:
    """One filter: its parameter name, what it selects and how, and how each surface shows it."""

    name: str
    selects: str  # plain English, before the values: "recordings of these patients: a, b"
    help: str  # one sentence for the CLI, the API docs and the dashboard
    target: Target  # what a value names
    exclude: bool = False  # leave out what matches instead of keeping only it
    label: str = ""  # the dashboard form's label
    placeholder: str = ""  # the dashboard form's hint in an empty box
    choices: tuple[str, ...] = ()  # the only values allowed (none: any name)
    many: bool = True  # a list of alternatives; otherwise one value (or none)
    default: int | str | None = None  # what a one-value setting means when left out

    @property
    def option(self) -> str:
        """The command-line flag."""
        return "--" + self.name.replace("_", "-")


FILTERS: tuple[FilterSpec, ...] = (
    FilterSpec(
        "patient",
        "recordings of these patients",
        "Only these patients.",
        target="patient",
        label="Patients",
        placeholder="all · comma-separated",
    ),
    FilterSpec(
        "exclude_patient",
        "leaving out these patients' recordings",
        "Leave out these patients.",
        target="patient",
        exclude=True,
        label="Leave out patients",
        placeholder="none",
    ),
    FilterSpec(
        "session",
        "these sessions (`s018` in any patient, or `patient_s018` in one)",
        "Only these sessions (s018, or patient_s018).",
        target="session",
        label="Sessions",
        placeholder="s001 or patient_s001",
    ),
    FilterSpec(
        "recording",
        "these recordings (cache file name or stem)",
        "Only these recordings (cache file name or stem).",
        target="recording",
        label="Recordings",
        placeholder="cache file or stem",
    ),
    FilterSpec(
        "exclude_recording",
        "leaving out these recordings (cache file name or stem)",
        "Leave out these recordings, e.g. those found unusable in review (cache file name or "
        "stem).",
        target="recording",
        exclude=True,
        label="Leave out recordings",
        placeholder="none",
    ),
    FilterSpec(
        "category",
        "categories",
        "Only these categories (partial_seizure, full_seizure, no_seizure, seizure).",
        target="category",
        choices=get_args(CategoryChoice),
    ),
    FilterSpec(
        "fold",
        "the patients of these test folds (`i/K`)",
        "Only the patients of test fold i of K (i/K, 0-based), as scikit-learn's "
        "StratifiedGroupKFold splits the snapshot's patients.",
        target="fold",
        label="Fold",
        placeholder="i/K, e.g. 0/5",
    ),
    FilterSpec(
        "exclude_fold",
        "leaving out the patients of these test folds (`i/K`)",
        "Leave out the patients of test fold i of K (i/K, 0-based): the training part.",
        target="fold",
        exclude=True,
        label="Leave out fold",
        placeholder="i/K, e.g. 0/5",
    ),
    FilterSpec(
        "fold_seed",
        "folds shuffled with seed",
        f"The folds' shuffle seed (random_state), 0 to {MAX_FOLD_SEED}; default 0. Only with "
        "fold or exclude_fold.",
        target="fold",
        label="Fold seed",
        placeholder="0",
        many=False,
        default=0,
    ),
    FilterSpec(
        "fold_stratify",
        "folds stratified by",
        "What the folds are stratified by: category (default) or seizure (seizure or not). "
        "Only with fold or exclude_fold.",
        target="fold",
        label="Folds stratified by",
        choices=get_args(StratifyChoice),
        many=False,
        default="category",
    ),
)
FILTER_FIELDS: tuple[str, ...] = tuple(spec.name for spec in FILTERS)
# Filters whose values are names typed in (the dashboard's text boxes); the others are choices.
NAME_FILTERS: tuple[FilterSpec, ...] = tuple(spec for spec in FILTERS if not spec.choices)
# The filters naming folds (`i/K` values), and the settings those folds are made with.
FOLD_FILTERS: tuple[FilterSpec, ...] = tuple(
    spec for spec in FILTERS if spec.target == "fold" and spec.many
)
FOLD_SETTINGS: tuple[FilterSpec, ...] = tuple(
    spec for spec in FILTERS if spec.target == "fold" and not spec.many
)


def refuse_unstorable(value: str) -> str:
    """No name contains a NUL character, and Postgres cannot even compare text holding one;
    nor a lone surrogate, which cannot even be stored."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii() and LONE_SURROGATE.search(value):
        raise ValueError(
            "must not contain a lone surrogate (half of a UTF-16 pair, not a character)"
        )
    return value


# Text that is stored or compared in the database.
Text = Annotated[str, AfterValidator(refuse_unstorable)]


def split_values(value: object) -> object:
    """Accept a list, a single string, or comma-separated strings; refuse empty items.

    No filter is no parameter (or `[]`). `patient=` (a job script's `patient=$EMPTY`), `a,,b`
    or a value of spaces asks for a patient named "", which is surely a mistake: read as "no
    filter" it would silently widen the question to the whole dataset.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        out: list[object] = []
        for item in value:
            if isinstance(item, str):
                parts = [part.strip() for part in item.split(",")]
                if not all(parts):
                    raise PydanticCustomError(
                        "empty_filter_value",
                        "empty value in {item}: leave the parameter out (or send []) for no filter",
                        {"item": repr(item)},
                    )
                out.extend(parts)
            else:
                out.append(item)
        return out
    return value


def _field_of(spec: FilterSpec) -> tuple[Any, Any]:
    """The pydantic field of a filter: a list of names (or of its choices), commas split; or,
    for a one-value setting, that value or None (its default)."""
    if not spec.many:
        single: Any = Literal[spec.choices] | None if spec.choices else FoldSeed
        return single, Field(default=None, description=spec.help)
    item: Any = Literal[spec.choices] if spec.choices else Text
    checks: list[Any] = [BeforeValidator(split_values)]
    if spec.target == "fold":
        item = FoldText
        checks.append(AfterValidator(one_fold_count))
    limit = len(spec.choices) or MAX_FILTER_VALUES
    values = Annotated[list[item], *checks]
    help_text = f"{spec.help} {LIST_HELP}"
    return values, Field(default_factory=list, max_length=limit, description=help_text)


class _SubsetFilterBase(BaseModel):
    """Which windows a question is about. Values within a filter are alternatives (OR); different
    filters must all hold (AND). A filter left out (or `[]`) matches everything; an empty value
    is refused (see split_values)."""

    model_config = ConfigDict(extra="forbid")

    def values_of(self, spec: FilterSpec) -> list[str]:
        """The filter's values as text; a one-value setting left out has none."""
        if not spec.many:
            value = getattr(self, spec.name)
            return [] if value is None else [str(value)]
        values: list[str] = getattr(self, spec.name)
        return values

    def has_folds(self) -> bool:
        return any(self.values_of(spec) for spec in FOLD_FILTERS)

    def fold_setting(self, spec: FilterSpec) -> Any:
        """A fold setting's value, its default when left out."""
        value = getattr(self, spec.name)
        return spec.default if value is None else value

    def normalized(self) -> SubsetFilter:
        """Sorted, de-duplicated values, `seizure` expanded: equal filters compare equal. The
        fold settings are spelled out with folds (`fold_seed` left out is 0) and dropped
        without them (they shape nothing then)."""
        fields: dict[str, Any] = {}
        folds = self.has_folds()
        for spec in FILTERS:
            if not spec.many:
                fields[spec.name] = self.fold_setting(spec) if folds else None
                continue
            chosen = set(self.values_of(spec))
            if spec.target == "category" and "seizure" in chosen:
                chosen = (chosen - {"seizure"}) | {"partial_seizure", "full_seizure"}
            fields[spec.name] = sorted(chosen)
        # Built from values this model already validated: no second validation (a hot path).
        built: SubsetFilter = SubsetFilter.model_construct(None, **fields)
        return built

    def selected_categories(self) -> tuple[str, ...]:
        chosen = set(self.normalized().values_of(CATEGORY))
        return tuple(c for c in CATEGORY_NAMES if not chosen or c in chosen)


CATEGORY = next(spec for spec in FILTERS if spec.target == "category")

# The model is made from FILTERS; to the type checker it is its base, whose fields it reads by
# spec (values_of), never by attribute.
if TYPE_CHECKING:

    class SubsetFilter(_SubsetFilterBase):
        pass

else:
    SubsetFilter = create_model(
        "SubsetFilter",
        __base__=_SubsetFilterBase,
        __doc__=_SubsetFilterBase.__doc__,
        __module__=__name__,
        **{spec.name: _field_of(spec) for spec in FILTERS},
    )
