"""The Seizure Stats Service's client for training jobs, with the wire schemas and the pure
arithmetic (categories, pos_weight schemes, balanced selection) the service itself uses."""

from seizure_stats.client import SeizureStatsClient
from seizure_stats.errors import (
    APIError,
    NotCachedError,
    OfflineError,
    SeizureStatsError,
    ServiceUnavailableError,
    UnmatchedFilterError,
    UnmatchedFilterWarning,
)

__all__ = [
    "APIError",
    "NotCachedError",
    "OfflineError",
    "SeizureStatsClient",
    "SeizureStatsError",
    "ServiceUnavailableError",
    "UnmatchedFilterError",
    "UnmatchedFilterWarning",
]
