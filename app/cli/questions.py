"""`stats`, `balanced` and `datasets`: questions about a dataset's windows, answered exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from app.cli import (
    counted,
    echo_model,
    local_session_factory,
    main,
    reported_errors,
    service_options,
)
from seizure_stats.schemas.filters import FILTERS
from seizure_stats.schemas.questions import BASES, WEIGHTINGS, BalancedQuery, StatsQuery


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The subset filters, shared by `stats` and `balanced`."""
    for spec in reversed(FILTERS):
        if not spec.many:  # one value: a fold setting
            choice = click.Choice(spec.choices) if spec.choices else None
            command = click.option(spec.option, type=choice, help=spec.help)(command)
            continue
        command = click.option(
            spec.option, multiple=True, help=spec.help + " Repeatable; commas work too."
        )(command)
    command = click.option("--snapshot", type=int, help="Snapshot id (default: current).")(command)
    command = click.option(
        "--strict/--no-strict",
        default=True,
        show_default=True,
        help="Fail when a patient, session or recording value matches no recording of the "
        "snapshot; --no-strict answers anyway, with a warning.",
    )(command)
    command = click.option("--dataset", required=True)(command)
    command = service_options(command)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def _filters(options: dict[str, Any]) -> dict[str, Any]:
    """The filters given, taken out of the options: lists, and the one-value settings set."""
    filters = {spec.name: options.pop(spec.name) for spec in FILTERS}
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in filters.items()
        if value is not None
    }


@main.command()
@filter_options
@click.option(
    "--weighting",
    type=click.Choice(WEIGHTINGS),
    default="sqrt",
    show_default=True,
)
@click.option(
    "--beta", type=float, default=0.9999, show_default=True, help="For effective weighting."
)
@click.option("--basis", type=click.Choice(BASES), default="window", show_default=True)
def stats(dataset: str, url: str | None, token: str | None, as_json: bool, **options: Any) -> None:
    """Exact counts, seizure ratio and pos_weight of a subset of DATASET."""
    filters = _filters(options)
    with reported_errors():
        query = StatsQuery.model_validate(filters | options)
        if url:
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                answer = client.stats(dataset, **filters, **options)
        else:
            from app import catalog
            from app.db import read_session
            from app.queries.answers import STATS

            with read_session(local_session_factory()) as session:
                found, snapshot = catalog.dataset_snapshot(session, dataset, query.snapshot)
                answer = STATS.compute(session, found, snapshot, query)
    if as_json:
        echo_model(answer)
        return
    c = answer.counts
    lines = [
        f"{answer.dataset} snapshot {answer.snapshot} ({answer.content_hash})",
        f"  windows        {c.total:>12,}  ({counted(answer.recordings, 'recording')})",
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
            from seizure_stats.client import SeizureStatsClient

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
            from app.queries.answers import BALANCED, BALANCED_INDEX

            with read_session(local_session_factory()) as session:
                found, snapshot = catalog.dataset_snapshot(session, dataset, query.snapshot)
                answer = BALANCED.compute(session, found, snapshot, query)
                if index_path:
                    entries = list(BALANCED_INDEX.compute(session, found, snapshot, query))
    if index_path:
        with index_path.open("w") as out:
            for cache_file, window_idx in entries:
                out.write(json.dumps({"cache_file": cache_file, "window_idx": window_idx}) + "\n")
    if as_json:
        echo_model(answer)
        return
    c = answer.counts
    click.echo(
        f"{answer.dataset} snapshot {answer.snapshot}: kept {counted(c.total, 'window')} "
        f"(partial {c.partial_seizure:,}, full {c.full_seizure:,}, no_seizure {c.no_seizure:,}); "
        f"seizure_ratio {answer.seizure_ratio:.6f}, pos_weight {answer.pos_weight:.6f}; "
        f"{answer.missing_skipped:,} missing skipped"
        + (f"; index written to {index_path}" if index_path else "")
    )
    for warning in answer.warnings:
        click.echo(f"  warning: {warning}")


@main.command()
@service_options
@click.option("--json", "as_json", is_flag=True)
def datasets(url: str | None, token: str | None, as_json: bool) -> None:
    """List datasets and their current snapshots."""
    with reported_errors():
        if url:
            from seizure_stats.client import SeizureStatsClient

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
        detail = (
            f"snapshot {current.id}, {counted(current.counts.total, 'window')}"
            if current
            else "empty"
        )
        click.echo(f"{d.name}: {detail} ({counted(d.snapshots, 'snapshot')})")
