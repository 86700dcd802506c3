"""`folds`: patient-level cross-validation folds of a dataset, with each fold's numbers."""

from __future__ import annotations

from typing import Any

import click

from app.cli import echo_model, local_session_factory, main, reported_errors, service_options
from seizure_stats.schemas.folds import DEFAULT_K, STRATIFY, FoldsQuery, FoldsResponse
from seizure_stats.schemas.questions import WEIGHTINGS


@main.command()
@click.option("--dataset", required=True)
@click.option("--k", type=int, default=DEFAULT_K, show_default=True, help="Number of folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shuffle.")
@click.option("--stratify", type=click.Choice(STRATIFY), default="category", show_default=True)
@click.option("--snapshot", type=int, help="Snapshot id (default: current).")
@click.option("--weighting", type=click.Choice(WEIGHTINGS), default="sqrt", show_default=True)
@click.option("--beta", type=float, default=0.9999, show_default=True)
@click.option("--full-ratio", type=float, default=0.3, show_default=True)
@click.option("--background-ratio", type=float, default=2.5, show_default=True)
@click.option("--balanced-seed", type=int, default=42, show_default=True)
@service_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def folds(dataset: str, url: str | None, token: str | None, as_json: bool, **options: Any) -> None:
    """StratifiedGroupKFold folds of DATASET's patients: each fold's test and training numbers."""
    with reported_errors():
        query = FoldsQuery.model_validate(options)
        if url:
            from seizure_stats.client import SeizureStatsClient

            with SeizureStatsClient(url, token=token) as client:
                answer = client.folds(dataset, **query.model_dump())
        else:
            from app import catalog
            from app.db import read_session
            from app.queries.fold_report import compute_folds

            with read_session(local_session_factory()) as session:
                found, snapshot = catalog.dataset_snapshot(session, dataset, query.snapshot)
                answer = compute_folds(session, found, snapshot, query)
    if as_json:
        echo_model(answer)
        return
    click.echo("\n".join(fold_lines(answer)))


def fold_lines(answer: FoldsResponse) -> list[str]:
    """One line a fold: its patients, windows, seizure ratio and pos_weight, test and train."""
    lines = [
        f"{answer.dataset} snapshot {answer.snapshot} ({answer.content_hash}): "
        f"{answer.k} folds of {answer.patients:,} patients, seed {answer.seed}, "
        f"stratified by {answer.stratify}",
        f"{'fold':>4} {'patients':>8} {'test':>12} {'ratio':>9} {'train':>12} {'ratio':>9} "
        f"{'pos_weight':>10} {'balanced':>10}",
    ]
    for fold in answer.folds:
        balanced = fold.balanced_train
        lines.append(
            f"{fold.fold:>4} {len(fold.patients):>8,} {fold.test.counts.total:>12,} "
            f"{fold.test.seizure_ratio:>9.6f} {fold.train.counts.total:>12,} "
            f"{fold.train.seizure_ratio:>9.6f} {fold.train.pos_weight:>10.6f} "
            + (f"{balanced.pos_weight:>10.6f}" if balanced else f"{'-':>10}")
        )
    test, train = answer.spread.test_seizure_ratio, answer.spread.train_seizure_ratio
    lines.append(
        f"spread of seizure_ratio: test {test.min:.6f} to {test.max:.6f}, "
        f"train {train.min:.6f} to {train.max:.6f}"
    )
    lines += [f"  warning: {w}" for w in answer.warnings]
    return lines
