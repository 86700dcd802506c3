"""`import`, `verify` and `demo`: load manifests into snapshots and record which files exist."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from app.cli import (
    byte_progress,
    counted,
    echo_model,
    local_session_factory,
    main,
    reported_errors,
    service_options,
    window_counts,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@main.command("import")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Dataset name; created if it does not exist.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also record which recordings exist there (file names only; contents are never read).",
)
@click.option("--source", default="", help="A note on where the manifest came from.")
@service_options
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
            from app.ingest.presence import check_presence
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                result = client.import_manifest(dataset, manifest, source=source)
                if cache_dir is not None:
                    names = _manifest_names(manifest)
                    report = check_presence(cache_dir, names)
                    client.report_presence(dataset, present=report.present, missing=report.missing)
                    _echo_presence(report.present, report.missing, report.unexpected)
        else:
            from app.db import run_write
            from app.ingest.importer import open_manifest_file, prepare_import, store_import

            factory = local_session_factory(create=True)
            with (
                open_manifest_file(manifest) as stream,
                byte_progress("parsing", manifest.stat().st_size) as advance,
            ):
                prepared = prepare_import(
                    factory, dataset, stream, source=source, cache_dir=cache_dir, progress=advance
                )
            outcome = run_write(factory, partial(store_import, prepared=prepared))
            from app.catalog import snapshot_out
            from seizure_stats.schemas.datasets import ImportResponse

            summary = snapshot_out(outcome.snapshot, outcome.dataset)
            result = ImportResponse(**summary.model_dump(), created=outcome.created)
            if outcome.presence is not None:
                p = outcome.presence
                _echo_presence(p.present, p.missing, p.unexpected)
    if as_json:
        echo_model(result)
        return
    verb = "imported as" if result.created else "already imported as"
    click.echo(
        f"{dataset}: {verb} snapshot {result.id} ({result.content_hash})\n"
        f"  {window_counts(result.counts)}; recordings {result.recordings:,}"
    )


def _manifest_names(manifest: Path) -> list[str]:
    from app.ingest.importer import open_manifest_file
    from app.ingest.manifest import parse_manifest

    with open_manifest_file(manifest) as stream:
        return parse_manifest(stream).recordings


def _echo_presence(present: list[str], missing: list[str], unexpected: list[str]) -> None:
    click.echo(
        f"presence: {counted(len(present), 'recording')} present, {len(missing):,} missing, "
        f"{counted(len(unexpected), 'unexpected .npz file')}",
        err=True,
    )
    for name in missing[:10]:
        click.echo(f"  missing: {name}", err=True)
    if len(missing) > 10:
        click.echo(f"  ... and {len(missing) - 10:,} more missing", err=True)
    for name in unexpected[:10]:
        click.echo(f"  unexpected: {name}", err=True)
    if len(unexpected) > 10:
        click.echo(f"  ... and {len(unexpected) - 10:,} more unexpected", err=True)


@main.command()
@click.argument("cache_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dataset", required=True)
@service_options
def verify(cache_dir: Path, dataset: str, url: str | None, token: str | None) -> None:
    """Check which of the dataset's recordings exist in CACHE_DIR (names only) and record it."""
    from app.ingest.presence import check_presence

    with reported_errors():
        if url:
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                names = client.recordings(dataset)
                report = check_presence(cache_dir, names)
                client.report_presence(dataset, present=report.present, missing=report.missing)
        else:
            from app import catalog
            from app.db import run_write
            from app.ingest.presence import PresenceReport, apply_presence, recording_names

            def verify_local(session: Session) -> PresenceReport:
                found = catalog.get_dataset(session, dataset)
                checked = check_presence(cache_dir, recording_names(session, found))
                apply_presence(session, found, checked.as_mapping())
                return checked

            report = run_write(local_session_factory(), verify_local)
    _echo_presence(report.present, report.missing, report.unexpected)


@main.command()
@click.option("--dataset", default="demo-train", show_default=True)
@click.option("--recordings", default=300, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--seed", default=7, show_default=True, type=int)
@service_options
def demo(dataset: str, recordings: int, seed: int, url: str | None, token: str | None) -> None:
    """Load a seeded TUSZ-like demo dataset (a few hundred recordings), with sample counts."""
    from app.demo import demo_manifest_bytes

    body, missing = demo_manifest_bytes(recordings, seed)
    with reported_errors():
        if url:
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                result = client.import_manifest(dataset, io.BytesIO(body), source="demo")
                client.report_presence(dataset, missing=missing)
                snapshot_id, total = result.id, result.counts.total
        else:
            from app.db import run_write
            from app.ingest.importer import store_parsed
            from app.ingest.manifest import parse_manifest
            from seizure_stats.labels import DEFAULT_FULL_THRESHOLD

            parsed = parse_manifest(io.BytesIO(body), full_threshold=DEFAULT_FULL_THRESHOLD)
            store = partial(
                store_parsed,
                dataset_name=dataset,
                parsed=parsed,
                source="demo",
                presence=dict.fromkeys(missing, False),
            )
            outcome = run_write(local_session_factory(create=True), store)
            snapshot_id, total = outcome.snapshot.id, parsed.total_windows
    click.echo(
        f"{dataset}: snapshot {snapshot_id}, {total:,} windows from {recordings} recordings "
        f"({len(missing)} reported missing)"
    )
