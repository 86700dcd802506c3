"""The Seizure Stats Service's client for training jobs, with the wire schemas and the pure
arithmetic (categories, pos_weight schemes, balanced selection) the service itself uses."""

from seizure_stats.client import (
    APIError,
    SeizureStatsClient,
    SeizureStatsError,
    ServiceUnavailableError,
    UnmatchedFilterError,
    UnmatchedFilterWarning,
)

__all__ = [
    "APIError",
    "SeizureStatsClient",
    "SeizureStatsError",
    "ServiceUnavailableError",
    "UnmatchedFilterError",
    "UnmatchedFilterWarning",
]
