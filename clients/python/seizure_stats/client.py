"""Client for training jobs and scripts: httpx and the wire schemas, nothing from the server side.

from seizure_stats.client import SeizureStatsClient
with SeizureStatsClient("http://stats:8000") as client:
    stats = client.stats("demo-train", exclude_patient=["aaaamcgo"])
criterion = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(stats.pos_weight))
"""

from __future__ import annotations

import gzip
import inspect
import io
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx

from seizure_stats.answer_cache import Question, query_text
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
from seizure_stats.schemas.datasets import (
    DatasetOut,
    ImportResponse,
    PresenceResult,
    RecordingOut,
    SnapshotOut,
)
from seizure_stats.schemas.filters import FILTER_FIELDS, FILTERS
from seizure_stats.schemas.folds import FoldsResponse
from seizure_stats.schemas.provenance import Answer, mark_cached
from seizure_stats.schemas.questions import BalancedResponse, StatsResponse
from seizure_stats.schemas.scans import ScanFileRecordOut, ScanOut, ScanPartIn, SnapshotScanIssues

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

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Past this many filter values, the filter travels in a POST body instead of the URL.
MAX_URL_VALUES = 100


FilterValue = str | Iterable[str] | None
# A one-value filter setting (`fold_seed`, `fold_stratify`).
SettingValue = int | str | None
Method = TypeVar("Method", bound=Callable[..., Any])
Answered = TypeVar("Answered", bound=Answer)
# The filters a call sets: lists of values, and one-value settings as given.
Filters = dict[str, list[str] | int | str]


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


class SeizureStatsClient:
    """A synchronous client. Retries connection errors, 429 and 5xx with exponential backoff.

    Every answer to a question is kept in `cache_dir` (default: `SEIZURE_STATS_CACHE`, else
    ~/.cache/seizure-stats; `cache=False` keeps nothing) and given back, marked `from_cache`,
    when the service stays unreachable; `offline=True` (default: `SEIZURE_STATS_OFFLINE=1`)
    sends nothing and answers from the cache only (seizure_stats.offline).
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
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport
        )
        self._retries = retries
        self._backoff = backoff
        offline = offline_from_environment() if offline is None else offline
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
        self._http.close()

    # -- reads ---------------------------------------------------------------------------------

    def datasets(self) -> list[DatasetOut]:
        return [DatasetOut.model_validate(d) for d in self._json("GET", "/api/v1/datasets")]

    def dataset(self, name: str) -> DatasetOut:
        return DatasetOut.model_validate(self._json("GET", f"/api/v1/datasets/{name}"))

    def snapshots(self, dataset: str) -> list[SnapshotOut]:
        data = self._json("GET", f"/api/v1/datasets/{dataset}/snapshots")
        return [SnapshotOut.model_validate(s) for s in data]

    def recordings(self, dataset: str) -> list[str]:
        """Cache file names of the dataset's recordings."""
        data = self._json("GET", f"/api/v1/datasets/{dataset}/recordings")
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
        filters = _filters("stats", named)
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
        filters = _filters("balanced", named)
        options = _balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
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
        filters = _filters("balanced_index", named)
        options = _balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
        question = self._question(dataset, "balanced-index", filters, options)

        def open_lines() -> Stream:
            response = self._send(self._index_request(dataset, filters, options), stream=True)
            return Stream(kept_headers(response.headers), _lines_of(response), None, response.close)

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

        filters = _filters("balanced_index", named)
        options = _balanced_options(snapshot, full_ratio, background_ratio, seed, strict)
        question = self._question(dataset, "balanced-index-npz", filters, options)

        def fetch() -> tuple[Mapping[str, str], bytes]:
            response = self._send(self._index_request(dataset, filters, options, "npz"))
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
        fetch = partial(self._json, "GET", path, params=_params({}, options))
        return self._ask(FoldsResponse, self._question(dataset, "folds", {}, options), fetch)

    def import_manifest(
        self, dataset: str, manifest: Path | str | IO[bytes], *, source: str = ""
    ) -> ImportResponse:
        """Upload a manifest.json (a path, or an open binary file; gzip is detected)."""
        if isinstance(manifest, str | Path):
            path = Path(manifest)
            with path.open("rb") as handle:
                return self.import_manifest(dataset, handle, source=source or path.name)
        head = manifest.read(2)
        manifest.seek(0)
        headers = {"Content-Type": "application/json"}
        if head == b"\x1f\x8b":
            headers["Content-Encoding"] = "gzip"
        request = self._http.build_request(
            "POST",
            f"/api/v1/datasets/{dataset}/snapshots",
            params={"source": source} if source else None,
            content=_read_chunks(manifest),
            headers=headers,
        )
        # An upload cannot be replayed from a consumed stream: no retries here.
        response = self._send(request, retry=False)
        return ImportResponse.model_validate(response.json())

    def report_presence(
        self, dataset: str, *, present: Iterable[str] = (), missing: Iterable[str] = ()
    ) -> PresenceResult:
        body = {"present": list(present), "missing": list(missing)}
        data = self._json("POST", f"/api/v1/datasets/{dataset}/presence", json=body)
        return PresenceResult.model_validate(data)

    def push_scan_part(self, dataset: str, part: ScanPartIn) -> ScanOut:
        """Push one part of a scan (gzip JSON). Safe to retry: an identical part is a no-op."""
        body = gzip.compress(part.model_dump_json().encode(), compresslevel=5)
        request = self._http.build_request(
            "POST",
            f"/api/v1/datasets/{dataset}/scan-parts",
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        return ScanOut.model_validate(self._send(request).json())

    def scan_files(self, dataset: str, *, counts: bool = False) -> list[ScanFileRecordOut]:
        """What the service knows per cache file (empty for a dataset it does not know)."""
        path = f"/api/v1/datasets/{dataset}/scan-files"
        try:
            data = self._json("GET", path, params={"counts": "true"} if counts else None)
        except APIError as exc:
            if exc.status_code == 404:
                return []
            raise
        return [ScanFileRecordOut.model_validate(r) for r in data]

    def scan(self, dataset: str, scan_id: str) -> ScanOut:
        return ScanOut.model_validate(
            self._json("GET", f"/api/v1/datasets/{dataset}/scans/{scan_id}")
        )

    def scan_issues(self, dataset: str, snapshot: int) -> SnapshotScanIssues:
        path = f"/api/v1/datasets/{dataset}/snapshots/{snapshot}/scan-issues"
        return SnapshotScanIssues.model_validate(self._json("GET", path))

    # -- plumbing ------------------------------------------------------------------------------

    def _question(
        self, dataset: str, kind: str, filters: Filters, options: Mapping[str, Any]
    ) -> Question:
        return Question.of(shown_url(self._http.base_url), dataset, kind, filters, options)

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
        if _value_count(filters) > MAX_URL_VALUES:
            body = filters | _drop_none(options)
            return self._http.build_request("POST", path, json=body, params=chosen)
        return self._http.build_request("GET", path, params=_params(filters, {**options, **chosen}))

    def _query(self, path: str, filters: Filters, options: Mapping[str, Any]) -> Any:
        if _value_count(filters) > MAX_URL_VALUES:
            return self._json("POST", path, json=filters | _drop_none(options))
        return self._json("GET", path, params=_params(filters, options))

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(self._http.build_request(method, path, **kwargs))
        return response.json()

    def _send(
        self, request: httpx.Request, *, stream: bool = False, retry: bool = True
    ) -> httpx.Response:
        if self._offline.offline:
            sent = f"{request.method} {shown_url(request.url)}"
            raise OfflineError(f"{OFFLINE_MODE}: {sent} not sent")
        attempts = self._retries + 1 if retry else 1
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if last_try:
                    raise ServiceUnavailableError(
                        f"{request.method} {shown_url(request.url)} failed after {attempt + 1} "
                        f"attempt(s): {exc!r}"
                    ) from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last_try:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._sleep(attempt, retry_after)
                continue
            if response.is_error:
                if stream:
                    response.read()
                raise _api_error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self._backoff * 2**attempt * (0.5 + random.random())
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(min(delay, 30.0))


def _api_error(response: httpx.Response) -> APIError:
    try:
        body = response.json()
        error, detail = str(body["error"]), str(body["detail"])
        if error == "unmatched_filter":
            return UnmatchedFilterError(response.status_code, error, detail, body)
        return APIError(response.status_code, error, detail)
    except (ValueError, KeyError, TypeError):
        return APIError(response.status_code, "http_error", response.text[:500])


def shown_url(url: httpx.URL) -> str:
    """A URL as the client writes it into its cache and its messages: without the user name
    and password a base URL may carry (httpx sends them as basic auth; they are no one's to
    read in a cache file or a log)."""
    return str(url.copy_with(userinfo=b""))


def _as_list(value: FilterValue) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _filters(method: str, named: Mapping[str, Any]) -> Filters:
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


def _balanced_options(
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


def _lines_of(response: httpx.Response) -> Iterator[str]:
    """A streamed answer's lines. A connection lost once they have begun is the service's
    failure like one lost before: it cannot fall back to the cache any more, since the lines
    read so far are in the caller's hands already."""
    try:
        yield from response.iter_lines()
    except httpx.TransportError as exc:
        request = response.request
        raise ServiceUnavailableError(
            f"{request.method} {shown_url(request.url)}: the connection was lost in the middle "
            f"of the answer: {exc!r}"
        ) from exc
    finally:
        response.close()


def _value_count(filters: Filters) -> int:
    return sum(len(v) if isinstance(v, list) else 1 for v in filters.values())


def _drop_none(options: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}


def _params(
    filters: Filters, options: Mapping[str, Any]
) -> list[tuple[str, str | int | float | bool | None]]:
    params: list[tuple[str, str | int | float | bool | None]] = [
        (name, value)
        for name, values in filters.items()
        for value in (values if isinstance(values, list) else [str(values)])
    ]
    params += [(key, query_text(value)) for key, value in _drop_none(options).items()]
    return params


def _read_chunks(stream: IO[bytes], size: int = 1024 * 1024) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
