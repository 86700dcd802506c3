"""Command line. Local work goes to the core (DATABASE_URL); with --url, to a running service."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import AppError, NotFoundError
from seizure_stats.schemas.questions import Counts

URL_HELP = "Talk to a running service at this URL instead of DATABASE_URL (env SEIZURE_STATS_URL)."
TOKEN_HELP = "API token for --url (env SEIZURE_STATS_TOKEN)."
# Where local commands record which database they opened, for error messages.
DATABASE_META = "seizure_stats.database"


def service_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url and --token: the options of every command that can talk to a running service."""
    command = click.option("--token", envvar="SEIZURE_STATS_TOKEN", help=TOKEN_HELP)(command)
    return click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)(command)


def fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seizure-stats")
def main() -> None:
    """Seizure Stats Service: exact statistics of EEG seizure-detection training sets."""


# -- local plumbing ------------------------------------------------------------------------------


def local_session_factory(*, create: bool = False) -> sessionmaker[Session]:
    """A session factory on DATABASE_URL, with the schema checked (or brought up, if embedded).

    Only commands that put data in (`create`) may bring a new SQLite file into being: a
    question asked in the wrong folder must say so, not leave an empty database behind.
    """
    from app.db import make_engine, make_session_factory, sqlite_file
    from app.storage.migrations import current_revision, head_revision, upgrade

    settings = Settings()
    url = settings.resolved_database_url
    shown = redacted_url(url)
    click.get_current_context().meta[DATABASE_META] = shown
    database_file = sqlite_file(url)
    if database_file is not None and not create and not database_file.exists():
        fail(f"no database at {shown}: import a manifest first, or set DATABASE_URL")
    if settings.uses_embedded_database:
        upgrade(url)
    engine = make_engine(url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if current_revision(engine) != head_revision():
        fail("the database schema is not at the latest migration: run `seizure-stats db upgrade`")
    return make_session_factory(engine)


def redacted_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def counted(count: int, noun: str) -> str:
    """`1 snapshot`, `2 snapshots`, `12,345 windows`."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def window_counts(counts: Counts) -> str:
    """A snapshot's windows on one line, as `import` and `scan` report them."""
    return (
        f"windows {counts.total:,}: partial_seizure {counts.partial_seizure:,}, "
        f"full_seizure {counts.full_seizure:,}, no_seizure {counts.no_seizure:,}"
    )


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn service and client errors into a one-line message and a non-zero exit."""
    from seizure_stats.client import SeizureStatsError

    try:
        yield
    except NotFoundError as exc:
        # Locally, the usual cause is the wrong database: name the one that was asked.
        database = click.get_current_context().meta.get(DATABASE_META)
        where = f" (database: {database})" if database else ""
        raise click.ClickException(exc.detail + where) from None
    except AppError as exc:
        raise click.ClickException(exc.detail) from None
    except SeizureStatsError as exc:
        raise click.ClickException(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.ClickException(problems) from None


def echo_model(model: BaseModel) -> None:
    click.echo(model.model_dump_json(indent=2))


@contextmanager
def byte_progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); silence otherwise, the summary line follows."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


# Each module registers its commands on `main` as it is imported, so `main` and the plumbing
# above must exist first.
from app.cli import data, folds, questions, scans, server, tokens  # noqa: E402, F401
