"""Every setting is documented in the README's one Settings table, with its real default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from app.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
# Read by the client and the CLI, not by the service.
# Read by the client, not by the service's Settings.
CLIENT_VARIABLES = {
    "SEIZURE_STATS_URL",
    "SEIZURE_STATS_TOKEN",
    "SEIZURE_STATS_CACHE",
    "SEIZURE_STATS_OFFLINE",
}


def variable_of(name: str) -> str:
    """The environment variable that sets a Settings field."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def settings_table() -> dict[str, tuple[str, str]]:
    """The rows of the table under `## Settings`: variable -> (default, meaning)."""
    section = README.split("\n## Settings\n", 1)
    assert len(section) == 2, "README has no '## Settings' section"
    body = section[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    tables = 0
    in_table = False
    for line in body.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table:
            tables += 1
            in_table = True
        match = re.match(r"\| `([A-Z_]+)` \| (.*?) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    assert tables == 1, "settings are documented in exactly one table"
    return rows


def documented_default(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_settings_table(name: str) -> None:
    rows = settings_table()
    variable = variable_of(name)
    assert variable in rows, f"{variable} is missing from the README's Settings table"
    default, meaning = rows[variable]
    assert meaning.strip(), variable
    if name != "database_url":
        assert default == documented_default(Settings.model_fields[name].default), variable


def test_the_table_documents_nothing_that_does_not_exist() -> None:
    known = {variable_of(name) for name in Settings.model_fields} | CLIENT_VARIABLES
    assert set(settings_table()) == known


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEIZURE_STATS_REQUIRE_READ_TOKEN", "true")
    monkeypatch.setenv("SEIZURE_STATS_LOG_LEVEL", "warning")
    monkeypatch.setenv("SEIZURE_STATS_SHUTDOWN_TIMEOUT_SECONDS", "25")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    settings = Settings()
    assert settings.require_read_token is True
    assert settings.log_level == "WARNING"
    assert settings.shutdown_timeout_seconds == 25
    assert settings.resolved_database_url == "postgresql://db/x"
