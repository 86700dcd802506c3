"""Command line. Local work goes to the core (DATABASE_URL); with --url, to a running service."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import AppError
from app.schemas import BalancedQuery, StatsQuery

URL_HELP = "Talk to a running service at this URL instead of DATABASE_URL (env SEIZURE_STATS_URL)."
TOKEN_HELP = "API token for --url (env SEIZURE_STATS_TOKEN)."
KEEP_ALIVE_SECONDS = 75


def fail(message: str) -> None:
    raise click.ClickException(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seizure-stats")
def main() -> None:
    """Seizure Stats Service: exact statistics of EEG seizure-detection training sets."""


# -- local plumbing ------------------------------------------------------------------------------


def local_session_factory() -> sessionmaker[Session]:
    """A session factory on DATABASE_URL, with the schema checked (or brought up, if embedded)."""
    from app.db import make_engine, make_session_factory
    from app.migrate import current_revision, head_revision, upgrade

    settings = Settings()
    url = settings.resolved_database_url
    if settings.uses_embedded_database:
        upgrade(url)
    engine = make_engine(url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if current_revision(engine) != head_revision():
        fail("the database schema is not at the latest migration: run `seizure-stats db upgrade`")
    return make_session_factory(engine)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn service and client errors into a one-line message and a non-zero exit."""
    from app.client import SeizureStatsError

    try:
        yield
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


# -- serve and db ----------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn)."""
    import logging

    import uvicorn

    from app.migrate import upgrade
    from app.observability import configure_logging

    settings = Settings()
    configure_logging(settings, force=True)
    # Logged, not echoed: in a container every stderr line stays one JSON object.
    log = logging.getLogger("seizure_stats")
    if settings.uses_embedded_database:
        upgrade(settings.resolved_database_url)
        log.info("database: %s", settings.resolved_database_url)
    log.info("serving on http://%s:%d  (API docs: http://%s:%d/docs)", host, port, host, port)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Idle keep-alive connections are the client's to close (httpx does after 5 s). With
        # uvicorn's own 5 s, a connection the server closed as a busy client reused it was a
        # transport error in the load test; proxies keep them 60-75 s for the same reason.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Logging is configured above (JSON or text, with request ids); the access log is
        # written by the app itself, without query strings or headers.
        log_config=None,
        access_log=False,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL."""
    from app.migrate import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at {revision}: {_redacted(settings.resolved_database_url)}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- tokens ----------------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens for the HTTP API (works on DATABASE_URL directly)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses it, e.g. training-jobs.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
def token_create(name: str, scope: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    from app.auth import create_token
    from app.db import write_session

    with reported_errors(), write_session(local_session_factory()) as session:
        new = create_token(session, name, scope)
    click.echo(f"token {new.identity.id} {name!r} ({scope}), shown only now:", err=True)
    click.echo(new.token)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
def token_list(as_json: bool) -> None:
    """List tokens (never the tokens themselves)."""
    from app.auth import display_prefix, list_tokens
    from app.db import read_session

    with reported_errors(), read_session(local_session_factory()) as session:
        rows = [
            {
                "id": row.id,
                "name": row.name,
                "scope": row.scope,
                "prefix": display_prefix(row),
                "created_at": row.created_at.isoformat(timespec="seconds"),
                "revoked_at": row.revoked_at.isoformat(timespec="seconds")
                if row.revoked_at
                else None,
            }
            for row in list_tokens(session)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        click.echo(
            f"{r['id']:>4}  {r['name']:<24} {r['scope']:<5}  {r['prefix']:<20} "
            f"created {r['created_at']}  {state}"
        )


@token.command("revoke")
@click.argument("name_or_id")
def token_revoke(name_or_id: str) -> None:
    """Revoke the active token(s) with this name, or the token with this id."""
    from app.auth import revoke_tokens
    from app.db import write_session

    with reported_errors(), write_session(local_session_factory()) as session:
        revoked = [(row.id, row.name) for row in revoke_tokens(session, name_or_id)]
    for token_id, name in revoked:
        click.echo(f"revoked token {token_id} {name!r}")


# -- import, verify, demo ---------------------------------------------------------------------


@main.command("import")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Dataset name; created if it does not exist.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also record which recordings exist there (file names only; contents are never read).",
)
@click.option("--source", default="", help="A note on where the manifest came from.")
@click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)
@click.option("--token", envvar="SEIZURE_STATS_TOKEN", help="API token for --url.")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
def import_command(
    manifest: Path,
    dataset: str,
    cache_dir: Path | None,
    source: str,
    url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Import a manifest.json (gzip accepted) as a new snapshot of DATASET."""
    source = source or manifest.name
    with reported_errors():
        if url:
            from app.client import SeizureStatsClient
            from app.ingest.presence import check_presence

            with SeizureStatsClient(url, token=token) as client:
                result = client.import_manifest(dataset, manifest, source=source)
                if cache_dir is not None:
                    names = _manifest_names(manifest)
                    report = check_presence(cache_dir, names)
                    client.report_presence(dataset, present=report.present, missing=report.missing)
                    _echo_presence(report.present, report.missing, report.unexpected)
        else:
            from app.ingest.importer import import_manifest, open_manifest_file

            factory = local_session_factory()
            with (
                open_manifest_file(manifest) as stream,
                byte_progress("parsing", manifest.stat().st_size) as advance,
            ):
                outcome = import_manifest(
                    factory, dataset, stream, source=source, cache_dir=cache_dir, progress=advance
                )
            from app.catalog import snapshot_out
            from app.schemas import ImportResponse

            summary = snapshot_out(outcome.snapshot, outcome.dataset)
            result = ImportResponse(**summary.model_dump(), created=outcome.created)
            if outcome.presence is not None:
                p = outcome.presence
                _echo_presence(p.present, p.missing, p.unexpected)
    if as_json:
        echo_model(result)
        return
    verb = "imported as" if result.created else "already imported as"
    c = result.counts
    click.echo(
        f"{dataset}: {verb} snapshot {result.id} ({result.content_hash})\n"
        f"  windows {c.total:,}: partial_seizure {c.partial_seizure:,}, "
        f"full_seizure {c.full_seizure:,}, no_seizure {c.no_seizure:,}; "
        f"recordings {result.recordings:,}"
    )


def _manifest_names(manifest: Path) -> list[str]:
    from app.ingest.importer import open_manifest_file
    from app.ingest.manifest import parse_manifest

    with open_manifest_file(manifest) as stream:
        return parse_manifest(stream).recordings


def _echo_presence(present: list[str], missing: list[str], unexpected: list[str]) -> None:
    click.echo(
        f"presence: {len(present):,} recordings present, {len(missing):,} missing, "
        f"{len(unexpected):,} unexpected .npz files",
        err=True,
    )
    for name in missing[:10]:
        click.echo(f"  missing: {name}", err=True)
    if len(missing) > 10:
        click.echo(f"  ... and {len(missing) - 10:,} more missing", err=True)


@main.command()
@click.argument("cache_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dataset", required=True)
@click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)
@click.option("--token", envvar="SEIZURE_STATS_TOKEN", help="API token for --url.")
def verify(cache_dir: Path, dataset: str, url: str | None, token: str | None) -> None:
    """Check which of the dataset's recordings exist in CACHE_DIR (names only) and record it."""
    from app.ingest.presence import check_presence

    with reported_errors():
        if url:
            from app.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                names = client.recordings(dataset)
                report = check_presence(cache_dir, names)
                client.report_presence(dataset, present=report.present, missing=report.missing)
        else:
            from app import catalog
            from app.db import write_session
            from app.ingest.presence import apply_presence, recording_names

            with write_session(local_session_factory()) as session:
                found = catalog.get_dataset(session, dataset)
                report = check_presence(cache_dir, recording_names(session, found))
                apply_presence(session, found, report.as_mapping())
    _echo_presence(report.present, report.missing, report.unexpected)


@main.command()
@click.option("--dataset", default="demo-train", show_default=True)
@click.option("--recordings", default=300, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)
@click.option("--token", envvar="SEIZURE_STATS_TOKEN", help="API token for --url.")
def demo(dataset: str, recordings: int, seed: int, url: str | None, token: str | None) -> None:
    """Load a seeded TUSZ-like demo dataset (a few hundred recordings), with sample counts."""
    from app.demo import demo_manifest_bytes

    body, missing = demo_manifest_bytes(recordings, seed)
    with reported_errors():
        if url:
            from app.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                result = client.import_manifest(dataset, io.BytesIO(body), source="demo")
                client.report_presence(dataset, missing=missing)
                snapshot_id, total = result.id, result.counts.total
        else:
            from app.ingest.importer import store_parsed
            from app.ingest.manifest import parse_manifest

            parsed = parse_manifest(io.BytesIO(body))
            outcome = store_parsed(
                local_session_factory(),
                dataset,
                parsed,
                source="demo",
                presence=dict.fromkeys(missing, False),
            )
            snapshot_id, total = outcome.snapshot.id, parsed.total_windows
    click.echo(
        f"{dataset}: snapshot {snapshot_id}, {total:,} windows from {recordings} recordings "
        f"({len(missing)} reported missing)"
    )


# -- questions -----------------------------------------------------------------------------------


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The subset filters, shared by `stats` and `balanced`."""
    specs = [
        ("--patient", "Only these patients."),
        ("--exclude-patient", "Leave out these patients."),
        ("--session", "Only these sessions (s018, or patient_s018)."),
        ("--recording", "Only these recordings (cache file name or stem)."),
        (
            "--category",
            "Only these categories (partial_seizure, full_seizure, no_seizure, seizure).",
        ),
    ]
    for flag, text in reversed(specs):
        command = click.option(flag, multiple=True, help=text + " Repeatable; commas work too.")(
            command
        )
    command = click.option("--snapshot", type=int, help="Snapshot id (default: current).")(command)
    command = click.option("--dataset", required=True)(command)
    command = click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)(command)
    command = click.option("--token", envvar="SEIZURE_STATS_TOKEN", help=TOKEN_HELP)(command)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def _filters(options: dict[str, Any]) -> dict[str, Any]:
    names = ("patient", "exclude_patient", "session", "recording", "category")
    return {name: list(options.pop(name)) for name in names}


@main.command()
@filter_options
@click.option(
    "--weighting",
    type=click.Choice(["sqrt", "linear", "effective", "none"]),
    default="sqrt",
    show_default=True,
)
@click.option(
    "--beta", type=float, default=0.9999, show_default=True, help="For effective weighting."
)
@click.option(
    "--basis", type=click.Choice(["window", "sample"]), default="window", show_default=True
)
def stats(dataset: str, url: str | None, token: str | None, as_json: bool, **options: Any) -> None:
    """Exact counts, seizure ratio and pos_weight of a subset of DATASET."""
    filters = _filters(options)
    with reported_errors():
        query = StatsQuery.model_validate(filters | options)
        if url:
            from app.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                answer = client.stats(dataset, **filters, **options)
        else:
            from app import catalog
            from app.db import read_session
            from app.stats import compute_stats

            with read_session(local_session_factory()) as session:
                found = catalog.get_dataset(session, dataset)
                snapshot = catalog.resolve_snapshot(session, found, query.snapshot)
                answer = compute_stats(session, found, snapshot, query)
    if as_json:
        echo_model(answer)
        return
    c = answer.counts
    lines = [
        f"{answer.dataset} snapshot {answer.snapshot} ({answer.content_hash})",
        f"  windows        {c.total:>12,}  ({answer.recordings:,} recordings)",
        f"  partial        {c.partial_seizure:>12,}",
        f"  full           {c.full_seizure:>12,}",
        f"  no_seizure     {c.no_seizure:>12,}",
        f"  seizure_ratio  {answer.seizure_ratio:>12.6f}",
    ]
    if answer.sample_ratio is not None:
        lines.append(f"  sample_ratio   {answer.sample_ratio:>12.6f}")
    lines.append(
        f"  pos_weight     {answer.pos_weight:>12.6f}  ({answer.weighting}, {answer.basis})"
    )
    if answer.missing_windows:
        lines.append(f"  missing        {answer.missing_windows:>12,}  windows not on the volume")
    lines += [f"  warning: {w}" for w in answer.warnings]
    click.echo("\n".join(lines))


@main.command()
@filter_options
@click.option("--full-ratio", type=float, default=0.3, show_default=True)
@click.option("--background-ratio", type=float, default=2.5, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--index",
    "index_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the kept (cache_file, window_idx) entries, in dataset order, as JSON lines.",
)
def balanced(
    dataset: str,
    url: str | None,
    token: str | None,
    as_json: bool,
    index_path: Path | None,
    **options: Any,
) -> None:
    """What the balanced training dataset keeps of a subset: counts, ratio, pos_weight."""
    filters = _filters(options)
    with reported_errors():
        query = BalancedQuery.model_validate(filters | options)
        entries: list[tuple[str, int]] = []
        if url:
            from app.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                answer = client.balanced(dataset, **filters, **options)
                if index_path:
                    entries = [
                        (e.cache_file, e.window_idx)
                        for e in client.balanced_index(dataset, **filters, **options)
                    ]
        else:
            from app import catalog
            from app.db import read_session
            from app.selection import balanced_index, compute_balanced

            with read_session(local_session_factory()) as session:
                found = catalog.get_dataset(session, dataset)
                snapshot = catalog.resolve_snapshot(session, found, query.snapshot)
                answer = compute_balanced(session, found, snapshot, query)
                if index_path:
                    entries = list(balanced_index(session, found, snapshot, query))
    if index_path:
        with index_path.open("w") as out:
            for cache_file, window_idx in entries:
                out.write(json.dumps({"cache_file": cache_file, "window_idx": window_idx}) + "\n")
    if as_json:
        echo_model(answer)
        return
    c = answer.counts
    click.echo(
        f"{answer.dataset} snapshot {answer.snapshot}: kept {c.total:,} windows "
        f"(partial {c.partial_seizure:,}, full {c.full_seizure:,}, no_seizure {c.no_seizure:,}); "
        f"seizure_ratio {answer.seizure_ratio:.6f}, pos_weight {answer.pos_weight:.6f}; "
        f"{answer.missing_skipped:,} missing skipped"
        + (f"; index written to {index_path}" if index_path else "")
    )
    for warning in answer.warnings:
        click.echo(f"  warning: {warning}")


@main.command()
@click.option("--url", envvar="SEIZURE_STATS_URL", help=URL_HELP)
@click.option("--token", envvar="SEIZURE_STATS_TOKEN", help=TOKEN_HELP)
@click.option("--json", "as_json", is_flag=True)
def datasets(url: str | None, token: str | None, as_json: bool) -> None:
    """List datasets and their current snapshots."""
    with reported_errors():
        if url:
            from app.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                found = client.datasets()
        else:
            from app import catalog
            from app.db import read_session

            with read_session(local_session_factory()) as session:
                found = [catalog.dataset_out(session, d) for d in catalog.list_datasets(session)]
    if as_json:
        click.echo(json.dumps([d.model_dump(mode="json") for d in found], indent=2))
        return
    for d in found:
        current = d.current_snapshot
        detail = f"snapshot {current.id}, {current.counts.total:,} windows" if current else "empty"
        click.echo(f"{d.name}: {detail} ({d.snapshots} snapshots)")
