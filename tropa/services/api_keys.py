"""API keys: shown once, stored as SHA-256 hashes, each with scopes."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from tropa.store.models import ApiKey

SCOPES = ("events:write", "read", "loyalty:write", "tasks:write", "admin")


def hash_key(plain: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(plain.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: list[str]) -> str:
    """Make a key and return its plain text; only the hash is kept."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes {unknown}; choose from {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    plain = f"tropa_{key_id}_{secrets.token_urlsafe(24)}"
    session.add(ApiKey(id=key_id, name=name, key_hash=hash_key(plain), scopes=sorted(scopes)))
    return plain


def ensure_key(session: Session, name: str, plain: str, scopes: list[str]) -> None:
    """Register a known key (the development key) if it is not there yet."""
    digest = hash_key(plain)
    if session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first() is None:
        session.add(ApiKey(id=secrets.token_hex(6), name=name, key_hash=digest,
                           scopes=sorted(scopes)))


def scopes_of(session: Session, plain: str) -> list[str] | None:
    """The scopes of a valid key, or None."""
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(plain))).first()
    if row is None or row.revoked_at is not None:
        return None
    return list(row.scopes)
