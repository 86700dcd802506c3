"""Client for training jobs and scripts: httpx and the wire schemas, nothing from the server side.

from seizure_stats.client import SeizureStatsClient
with SeizureStatsClient("http://stats:8000") as client:
    stats = client.stats("demo-train", exclude_patient=["aaaamcgo"])
criterion = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(stats.pos_weight))
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from seizure_stats import query_params
from seizure_stats.answer_cache import Question
from seizure_stats.errors import (
    APIError,
    NotCachedError,
    OfflineError,
    SeizureStatsError,
    ServiceUnavailableError,
    UnmatchedFilterError,
    UnmatchedFilterWarning,
)
from seizure_stats.index_answers import IndexAnswer, IndexArrays, IndexEntries, warn_of_unmatched
from seizure_stats.numpy_extra import numpy_missing
from seizure_stats.offline import (
    OFFLINE_MODE,
    OfflineAnswers,
    Stream,
    cache_directory,
    kept_headers,
    offline_from_environment,
)
from seizure_stats.query_params import (
    Filters,
    FilterValue,
    SettingValue,
    balanced_options,
    filters_named,
    takes_filters,
)
from seizure_stats.schemas.datasets import (
    DatasetOut,
    RecordingOut,
    SnapshotOut,
)
from seizure_stats.schemas.folds import FoldsResponse
from seizure_stats.schemas.provenance import Answer, mark_cached
from seizure_stats.schemas.questions import BalancedResponse, StatsResponse
from seizure_stats.transport import Transport, lines_of, shown_url
from seizure_stats.upkeep import DatasetUpkeep

__all__ = [
    "APIError",
    "IndexArrays",
    "IndexEntries",
    "NotCachedError",
    "OfflineError",
    "SeizureStatsClient",
    "SeizureStatsError",
    "ServiceUnavailableError",
    "UnmatchedFilterError",
    "UnmatchedFilterWarning",
]

Answered = TypeVar("Answered", bound=Answer)


class SeizureStatsClient(DatasetUpkeep):
    """A synchronous client. Retries connection errors, 429 and 5xx with exponential backoff.

    Every answer to a question is kept in `cache_dir` (default: `SEIZURE_STATS_CACHE`, else
    `$XDG_CACHE_HOME/seizure-stats`, else ~/.cache/seizure-stats; `cache=False` keeps nothing)
    and given back, marked `from_cache`, when the service stays unreachable; `offline=True`
    (default: `SEIZURE_STATS_OFFLINE=1`, read here, when the client is made) sends nothing and
    answers from the cache only (seizure_stats.offline).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        cache_dir: Path | str | None = None,
        cache: bool = True,
        offline: bool | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("SEIZURE_STATS_URL") or "http://127.0.0.1:8000"
        token = token or os.environ.get("SEIZURE_STATS_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        offline = offline_from_environment() if offline is None else offline
        http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport
        )
        self._transport = Transport(
            http, retries=retries, backoff=backoff, offline_mode=OFFLINE_MODE if offline else None
        )
        directory = cache_directory(cache_dir) if cache else None
        self._offline = OfflineAnswers(directory, offline=offline)

    @property
    def cache_dir(self) -> Path | None:
        """Where answers are kept (None with `cache=False`)."""
        return self._offline.cache.directory if self._offline.cache else None

    @property
    def offline(self) -> bool:
        return self._offline.offline

    def __enter__(self) -> SeizureStatsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.http.close()

    # -- reads ---------------------------------------------------------------------------------

    def datasets(self) -> list[DatasetOut]:
        return [
            DatasetOut.model_validate(d) for d in self._transport.json("GET", "/api/v1/datasets")
        ]

    def dataset(self, name: str) -> DatasetOut:
        return DatasetOut.model_validate(self._transport.json("GET", f"/api/v1/datasets/{name}"))

    def snapshots(self, dataset: str) -> list[SnapshotOut]:
        data = self._transport.json("GET", f"/api/v1/datasets/{dataset}/snapshots")
        return [SnapshotOut.model_validate(s) for s in data]

    def recordings(self, dataset: str) -> list[str]:
        """Cache file names of the dataset's recordings."""
        data = self._transport.json("GET", f"/api/v1/datasets/{dataset}/recordings")
        return [RecordingOut.model_validate(r).cache_file for r in data]

    @takes_filters
    def stats(
        self,
        dataset: str,
        *,
        snapshot: int | None = None,
        weighting: str = "sqrt",
        beta: float = 0.9999,
        basis: str = "window",
        strict: bool = True,
        **named: FilterValue | SettingValue,
    ) -> StatsResponse:
        """Exact counts, seizure_ratio and pos_weight of a subset.

        A filter value the snapshot has no recording for raises UnmatchedFilterError, unless
        `strict=False` (then the answer carries it in `unmatched` and a warning)."""
        filters = filters_named("stats", named)
        options = {
            "snapshot": snapshot,
            "weighting": weighting,
            "beta": beta,
            "basis": basis,
            "strict": strict,
        }
        path = f"/api/v1/datasets/{dataset}/stats"
        fetch = partial(self._query, path, filters, options)
        return self._ask(StatsResponse, self._question(dataset, "stats", filters, options), fetch)

    @takes_filters
    def balanced(
        self,
        dataset: str,
        *,
        snapshot: int | None = None,
        full_ratio: float = 0.3,
        background_ratio: float = 2.5,
        seed: int = 42,
        weighting: str = "sqrt",
        beta: float = 0.9999,
        strict: bool = True,
        **named: FilterValue | SettingValue,
    ) -> BalancedResponse:
        """Counts and pos_weight of what the balanced training dataset keeps (strict as
        `stats`)."""
        filters = filters_named("balanced", named)
        options = balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
        options |= {"weighting": weighting, "beta": beta}
        path = f"/api/v1/datasets/{dataset}/balanced"
        fetch = partial(self._query, path, filters, options)
        question = self._question(dataset, "balanced", filters, options)
        return self._ask(BalancedResponse, question, fetch)

    @takes_filters
    def balanced_index(
        self,
        dataset: str,
        *,
        snapshot: int | None = None,
        full_ratio: float = 0.3,
        background_ratio: float = 2.5,
        seed: int = 42,
        strict: bool = True,
        **named: FilterValue | SettingValue,
    ) -> IndexEntries:
        """The balanced dataset's (cache_file, window_idx) entries in dataset order, streamed
        (strict as `stats`); the question is sent when the first entry is wanted."""
        filters = filters_named("balanced_index", named)
        options = balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
        question = self._question(dataset, "balanced-index", filters, options)

        def open_lines() -> Stream:
            response = self._transport.send(
                self._index_request(dataset, filters, options), stream=True
            )
            return Stream(kept_headers(response.headers), lines_of(response), None, response.close)

        def open_answer() -> IndexAnswer:
            stream = self._offline.stream(question, open_lines)
            warn_of_unmatched(stream.headers, stacklevel=4)
            return IndexAnswer.of(stream.headers, stream.cached_at, stream.lines, stream.release)

        return IndexEntries(open_answer)

    @takes_filters
    def balanced_index_arrays(
        self,
        dataset: str,
        *,
        snapshot: int | None = None,
        full_ratio: float = 0.3,
        background_ratio: float = 2.5,
        seed: int = 42,
        strict: bool = True,
        **named: FilterValue | SettingValue,
    ) -> IndexArrays:
        """The same entries as balanced_index, as numpy arrays (needs numpy): `cache_files`
        (each name once, sorted), and per entry `recording` (a position in `cache_files`) and
        `window_idx`. Entry i is (cache_files[recording[i]], window_idx[i]); for a large
        selection this loads many times faster than the JSON lines."""
        try:
            import numpy as np  # only here: the rest of the client works without numpy
        except ModuleNotFoundError as missing:
            raise numpy_missing("balanced_index_arrays") from missing

        filters = filters_named("balanced_index", named)
        options = balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
        question = self._question(dataset, "balanced-index-npz", filters, options)

        def fetch() -> tuple[Mapping[str, str], bytes]:
            response = self._transport.send(self._index_request(dataset, filters, options, "npz"))
            return kept_headers(response.headers), response.content

        headers, content, cached_at = self._offline.npz(question, fetch)
        warn_of_unmatched(headers, stacklevel=2)
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            columns = {name: arrays[name] for name in ("cache_files", "recording", "window_idx")}
        return IndexArrays(columns, headers, cached_at)

    # -- writes --------------------------------------------------------------------------------

    def folds(
        self,
        dataset: str,
        *,
        k: int = 5,
        seed: int = 0,
        stratify: str = "category",
        snapshot: int | None = None,
        weighting: str = "sqrt",
        beta: float = 0.9999,
        full_ratio: float = 0.3,
        background_ratio: float = 2.5,
        balanced_seed: int = 42,
    ) -> FoldsResponse:
        """Patient-level cross-validation folds: each fold's patients, the stats of its test and
        training parts, and the balanced selection of its training part."""
        options = {
            "k": k,
            "seed": seed,
            "stratify": stratify,
            "snapshot": snapshot,
            "weighting": weighting,
            "beta": beta,
            "full_ratio": full_ratio,
            "background_ratio": background_ratio,
            "balanced_seed": balanced_seed,
        }
        path = f"/api/v1/datasets/{dataset}/folds"
        fetch = partial(self._transport.json, "GET", path, params=query_params.params({}, options))
        return self._ask(FoldsResponse, self._question(dataset, "folds", {}, options), fetch)

    # -- plumbing ------------------------------------------------------------------------------

    def _question(
        self, dataset: str, kind: str, filters: Filters, options: Mapping[str, Any]
    ) -> Question:
        return Question.of(
            shown_url(self._transport.http.base_url), dataset, kind, filters, options
        )

    def _ask(self, model: type[Answered], question: Question, fetch: Callable[[], Any]) -> Answered:
        """A question's JSON answer: live and kept, or from the cache when it must be."""
        data, cached_at = self._offline.json(question, fetch)
        answer = model.model_validate(data)
        return answer if cached_at is None else mark_cached(answer, cached_at)

    def _index_request(
        self,
        dataset: str,
        filters: Filters,
        options: Mapping[str, Any],
        output: str | None = None,
    ) -> httpx.Request:
        """The request for the balanced index; `format` is a query parameter either way."""
        path = f"/api/v1/datasets/{dataset}/balanced/index"
        chosen = {"format": output} if output else {}
        if query_params.too_long_for_a_url(filters):
            body = query_params.body(filters, options)
            return self._transport.build("POST", path, json=body, params=chosen)
        params = query_params.params(filters, {**options, **chosen})
        return self._transport.build("GET", path, params=params)

    def _query(self, path: str, filters: Filters, options: Mapping[str, Any]) -> Any:
        if query_params.too_long_for_a_url(filters):
            return self._transport.json("POST", path, json=query_params.body(filters, options))
        return self._transport.json("GET", path, params=query_params.params(filters, options))
