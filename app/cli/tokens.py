"""`token create|list|revoke`: API tokens for the HTTP API, kept in DATABASE_URL."""

from __future__ import annotations

import json
from functools import partial

import click

from app.cli import local_session_factory, main, reported_errors


@main.group()
def token() -> None:
    """API tokens for the HTTP API (works on DATABASE_URL directly)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses it, e.g. training-jobs.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
def token_create(name: str, scope: str) -> None:
    """Create a token and print it once; only its hash is stored."""
    from app.auth import create_token
    from app.db import run_write

    with reported_errors():
        new = run_write(
            local_session_factory(create=True), partial(create_token, name=name, scope=scope)
        )
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
    from app.db import run_write

    with reported_errors():
        rows = run_write(local_session_factory(), partial(revoke_tokens, name_or_id=name_or_id))
    revoked = [(row.id, row.name) for row in rows]
    for token_id, name in revoked:
        click.echo(f"revoked token {token_id} {name!r}")
