"""The README documents every command, route and setting the code has."""

from __future__ import annotations

import re
from pathlib import Path

import click

from app.cli import main
from app.config import Settings
from app.main import create_app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def command_paths(group: click.Group, prefix: str = "") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += command_paths(command, f"{prefix}{name} ")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def test_every_cli_command_is_documented() -> None:
    for path in command_paths(main):
        assert f"`seizure-stats {path}" in README, path


def test_every_route_is_documented(tmp_path: Path) -> None:
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    documented = set()
    for row in README.splitlines():
        match = re.match(r"\| ([A-Z, ]+) \| `([^`]+)`", row)
        if match:
            methods, path = match.groups()
            documented |= {(m.strip(), path) for m in methods.split(",")}
    routes = {
        (method.upper(), path.replace("{snapshot_id}", "{id}"))
        for path, item in spec["paths"].items()
        for method in item
    }
    assert len(routes) >= 15
    assert routes <= documented, routes - documented


def test_every_setting_is_documented() -> None:
    for name, _field in Settings.model_fields.items():
        variable = "DATABASE_URL" if name == "database_url" else f"SEIZURE_STATS_{name.upper()}"
        assert f"`{variable}`" in README, variable


ROOT = Path(__file__).resolve().parent.parent
DESIGN = (ROOT / "docs" / "design.md").read_text()


def test_design_notes_name_only_what_exists() -> None:
    """Every file or package the design notes point at is there: a move must update the map."""
    named = set(re.findall(r"`((?:app|tests|clients)/[\w/.]*)`", DESIGN))
    assert len(named) > 20
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []


def test_design_notes_cover_every_package_of_the_app() -> None:
    packages = {
        f"app/{path.parent.relative_to(ROOT / 'app')}/"
        for path in (ROOT / "app").rglob("__init__.py")
        if path.parent != ROOT / "app"
    }
    assert packages, "no packages found"
    missing = sorted(package for package in packages if f"`{package}`" not in DESIGN)
    assert missing == []
