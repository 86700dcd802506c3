"""CI=true: a test that cannot have what it needs fails instead of skipping."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def cannot_run(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true: CI must not pass by running less."""
    if IN_CI:
        pytest.fail(f"CI=true but this cannot run: {reason}")
    pytest.skip(reason)
