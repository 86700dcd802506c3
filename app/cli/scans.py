"""`scan`: build a dataset's manifest from its NPZ cache and import it as a snapshot."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from app.cli import (
    echo_model,
    fail,
    local_session_factory,
    main,
    reported_errors,
    service_options,
    window_counts,
)


@main.command()
@click.argument("cache_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Dataset name; created if it does not exist.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes reading files (default: the machine's cores).",
)
@click.option(
    "--write-manifest",
    "manifest_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the manifest.json training code reads (not with --shard i/n, n > 1).",
)
@click.option(
    "--shard",
    "shard_text",
    help="i/n: scan only shard i (0-based) of n; run one per machine with the same --scan-id.",
)
@click.option("--scan-id", help="Names the scan the shards belong to (needed with --shard).")
@click.option("--pattern", default="*_windows.npz", show_default=True, help="Files to scan.")
@service_options
@click.option("--json", "as_json", is_flag=True, help="Print the scan as JSON.")
def scan(
    cache_dir: Path,
    dataset: str,
    workers: int | None,
    manifest_path: Path | None,
    shard_text: str | None,
    scan_id: str | None,
    pattern: str,
    url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Build DATASET's manifest from the NPZ files in CACHE_DIR and import it as a snapshot.

    Reads only each file's `labels` member, and only for files that are new or changed since
    the last scan (size and mtime). Bad files are skipped and reported, never counted.
    """
    from app.cli.scan_progress import scan_progress
    from app.scan.cache_reader import list_cache_dir, plan_scan, scan_part
    from app.scan.file_result import parse_shard

    try:
        shard = parse_shard(shard_text) if shard_text else (0, 1)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--shard") from None
    if shard[1] > 1 and not scan_id:
        fail("--shard i/n with n > 1 needs --scan-id, the same on every machine")
    if shard[1] > 1 and manifest_path is not None:
        fail("--write-manifest needs the whole cache: it cannot be used with --shard i/n, n > 1")
    scan_id = scan_id or _new_scan_id()
    assembly = None
    with reported_errors():
        listing = list_cache_dir(cache_dir, pattern=pattern, shard=shard)
        if url:
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                records = client.scan_files(dataset, counts=manifest_path is not None)
                plan = plan_scan(listing, {r.cache_file: (r.size, r.mtime_ns) for r in records})
                with scan_progress(len(plan.to_read)) as (tally, on_result):
                    part, fresh = scan_part(
                        plan, scan_id=scan_id, shard=shard, workers=workers, on_result=on_result
                    )
                if manifest_path is not None:
                    assembly = _remote_assembly(client, dataset, records, plan.reused, fresh)
                result = client.push_scan_part(dataset, part)
        else:
            from app.db import run_write
            from app.scan.file_records import known_files_of
            from app.scan.parts import prepare_part, submit_part

            factory = local_session_factory(create=True)
            plan = plan_scan(listing, known_files_of(factory, dataset))
            with scan_progress(len(plan.to_read)) as (tally, on_result):
                part, _ = scan_part(
                    plan, scan_id=scan_id, shard=shard, workers=workers, on_result=on_result
                )
            prepared = prepare_part(dataset, part)
            outcome = run_write(factory, partial(submit_part, prepared=prepared))
            result, assembly = outcome.scan, outcome.assembly
        if not sys.stderr.isatty():
            click.echo(tally.summary(len(plan.reused)), err=True)
        if manifest_path is not None and assembly is not None and assembly.parsed is not None:
            from app.ingest.manifest_writer import write_manifest

            write_manifest(assembly.parsed, manifest_path)
    if as_json:
        echo_model(result)
        return
    _echo_scan(result, manifest_path)


def _new_scan_id() -> str:
    import uuid
    from datetime import UTC, datetime

    return f"scan-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _remote_assembly(
    client: Any, dataset: str, records: list[Any], reused: list[Any], fresh: list[Any]
) -> Any:
    """The manifest the service will assemble, built here from its records and the fresh reads."""
    from app.scan.assembly import assemble
    from app.scan.file_records import as_result
    from seizure_stats.client import APIError
    from seizure_stats.labels import DEFAULT_FULL_THRESHOLD

    try:
        threshold = client.dataset(dataset).full_threshold
    except APIError as exc:
        if exc.status_code != 404:
            raise
        threshold = DEFAULT_FULL_THRESHOLD
    by_name = {r.cache_file: r for r in records}
    return assemble([*fresh, *(as_result(by_name[r.name]) for r in reused)], threshold)


def _echo_scan(result: Any, manifest_path: Path | None) -> None:
    if not result.complete:
        waiting = sorted(set(range(result.shard_count)) - set(result.parts_received))
        click.echo(
            f"{result.dataset}: scan {result.scan_id}: {len(result.parts_received)} of "
            f"{result.shard_count} parts received; the snapshot is assembled when parts "
            f"{', '.join(map(str, waiting))} arrive"
        )
        return
    snapshot = result.snapshot
    verb = "imported as" if result.snapshot_created else "unchanged, already"
    click.echo(
        f"{result.dataset}: scan {result.scan_id} {verb} snapshot {snapshot.id} "
        f"({snapshot.content_hash})\n"
        f"  files {result.files:,}: read {result.read:,}, unchanged {result.reused:,}, "
        f"skipped {result.skipped:,}; recordings {snapshot.recordings:,}, "
        f"missing {result.missing:,}\n"
        f"  {window_counts(snapshot.counts)}"
    )
    for issue in result.issues:
        click.echo(f"  skipped {issue.cache_file}: {issue.code}: {issue.reason}")
    if result.skipped > len(result.issues):
        click.echo(f"  ... and {result.skipped - len(result.issues):,} more skipped")
    if manifest_path is not None:
        click.echo(f"  manifest written to {manifest_path}")
