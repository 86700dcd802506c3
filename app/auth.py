"""API tokens: creation, listing, revocation, and checking a presented bearer token.

A token reads `sst_<lookup>_<secret>`: `lookup` (12 hex digits) is a public key to find the row,
`secret` carries 256 random bits. Only `sha256(token)` is stored. A slow password hash (bcrypt,
scrypt, argon2) exists to make guessing *low-entropy* human passwords from a stolen hash costly;
a 256-bit random secret cannot be guessed at any hash speed, so one fast SHA-256 is as safe here
and keeps checking a token to microseconds per request. The stored and computed hashes are
compared with `hmac.compare_digest`, so the time taken does not depend on how much matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ConflictError, ForbiddenError, InvalidRequestError, UnauthorizedError
from app.models import ApiToken, utc_now

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
# What each scope may do: a write token can read too.
GRANTS: dict[str, frozenset[str]] = {"read": frozenset({"read"}), "write": frozenset(SCOPES)}

TOKEN_PREFIX = "sst"
TOKEN_PATTERN = re.compile(r"^sst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
REALM = "seizure-stats"


@dataclass(frozen=True)
class TokenIdentity:
    """Who a verified request comes from. Never holds the token itself."""

    id: int
    name: str
    scope: str


@dataclass(frozen=True)
class NewToken:
    identity: TokenIdentity
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> tuple[str, str]:
    """A new token and its public lookup part."""
    lookup = secrets.token_hex(6)
    return f"{TOKEN_PREFIX}_{lookup}_{secrets.token_urlsafe(32)}", lookup


def validate_token_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise InvalidRequestError(
            f"token name {name[:80]!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )


def create_token(session: Session, name: str, scope: str) -> NewToken:
    """Store a new token's hash; the returned plain token is never stored or shown again."""
    validate_token_name(name)
    if scope not in SCOPES:
        raise InvalidRequestError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    active = select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    if session.scalars(active).first() is not None:
        raise ConflictError(f"an active token named {name!r} exists: revoke it first")
    token, lookup = generate_token()
    row = ApiToken(name=name, scope=scope, lookup=lookup, token_hash=hash_token(token))
    session.add(row)
    session.flush()
    return NewToken(TokenIdentity(row.id, row.name, row.scope), token)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_tokens(session: Session, name_or_id: str) -> list[ApiToken]:
    """Revoke the active tokens with this name, or the token with this id (names never start
    with a digit). Revoked tokens stay listed, so it is clear what once had access."""
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if name_or_id.isdigit():
        query = query.where(ApiToken.id == int(name_or_id))
    else:
        query = query.where(ApiToken.name == name_or_id)
    found = list(session.scalars(query))
    if not found:
        raise InvalidRequestError(f"no active token with name or id {name_or_id[:80]!r}")
    now = utc_now()
    for row in found:
        row.revoked_at = now
    session.flush()
    return found


def display_prefix(row: ApiToken) -> str:
    """The public start of a token, enough to tell which one leaked."""
    return f"{TOKEN_PREFIX}_{row.lookup}_…"


def identify(session: Session, presented: str | None, needed: Scope) -> TokenIdentity:
    """The identity behind a presented bearer token; 401 when it is missing, unknown or revoked."""
    if not presented:
        raise UnauthorizedError(
            f"this request needs a bearer token with scope {needed!r}: send "
            "'Authorization: Bearer <token>' (an operator creates one with "
            "`seizure-stats token create`)",
            challenge=f'Bearer realm="{REALM}"',
        )
    match = TOKEN_PATTERN.match(presented)
    row = None
    if match is not None:
        row = session.scalars(
            select(ApiToken).where(ApiToken.lookup == match.group(1))
        ).one_or_none()
    computed = hash_token(presented)
    # Compare against something even when no row was found: a miss and a mismatch look alike.
    stored = row.token_hash if row is not None else "0" * len(computed)
    if not hmac.compare_digest(stored, computed) or row is None or row.revoked_at is not None:
        raise UnauthorizedError(
            "the bearer token is invalid or revoked",
            challenge=f'Bearer realm="{REALM}", error="invalid_token"',
        )
    return TokenIdentity(row.id, row.name, row.scope)


def check_scope(identity: TokenIdentity, needed: Scope) -> None:
    """403 unless the token's scope grants `needed`."""
    if needed not in GRANTS.get(identity.scope, frozenset()):
        raise ForbiddenError(
            f"token {identity.name!r} has scope {identity.scope!r}; this request needs {needed!r}",
            challenge=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{needed}"',
        )


def authenticate(session: Session, presented: str | None, needed: Scope) -> TokenIdentity:
    """The identity behind a presented token if it grants `needed`; else 401 or 403."""
    identity = identify(session, presented, needed)
    check_scope(identity, needed)
    return identity
