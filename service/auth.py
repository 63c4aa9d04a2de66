"""API keys with roles, stored as SHA-256 hashes; the raw key is shown once at creation."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import ApiKey, AuditLog, utcnow

ROLES = ("ingest", "analyst", "admin")
PERMISSIONS = {
    "ingest": {"appeals:write", "classify"},
    "analyst": {"appeals:read", "labels:write", "classify", "metrics", "models:read"},
    "admin": {"appeals:write", "appeals:read", "labels:write", "classify", "metrics", "models:read", "models:write",
              "categories:write"},
}


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_key(session: Session, *, role: str, name: str) -> str:
    """Create a key and return the raw value (never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise ValueError(f"a key named {name!r} already exists; pick another name or revoke it first")
    raw = "sq_" + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, role=role, key_hash=hash_key(raw), prefix=raw[:8]))
    session.add(AuditLog(actor="cli", action="key.create", target=name, detail={"role": role}))
    session.commit()
    return raw


def revoke_key(session: Session, *, name: str) -> None:
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise ValueError(f"no key named {name!r}")
    key.revoked_at = utcnow()
    session.add(AuditLog(actor="cli", action="key.revoke", target=name))
    session.commit()


def lookup(session: Session, raw: str | None) -> ApiKey | None:
    if not raw:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw)))
    return key if key is not None and key.revoked_at is None else None
