"""numpy is an extra of the client: what a job that asks for a part needing it is told."""

from __future__ import annotations

INSTALL_HINT = "pip install 'seizure-stats-client[numpy]' (or numpy itself)"


def numpy_missing(feature: str) -> ModuleNotFoundError:
    """The error for `feature` without numpy; it keeps `name="numpy"`, as the import's own did."""
    return ModuleNotFoundError(
        f"{feature} needs numpy, which the client installs only with its numpy extra: "
        f"{INSTALL_HINT}",
        name="numpy",
    )
