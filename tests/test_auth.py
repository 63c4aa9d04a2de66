"""API keys: shown once, stored hashed, audited, refused clearly (mutation testing found
these untested: docs/benchmarks.md, `make mutation`)."""
import hashlib
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from service.auth import create_key, hash_key, lookup, revoke_key
from service.db import ApiKey, AuditLog, make_engine, upgrade


@pytest.fixture
def session(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    engine = make_engine(url)
    with sessionmaker(engine)() as s:
        yield s
    engine.dispose()


def test_a_key_is_random_shown_once_and_stored_only_hashed(session):
    raw = create_key(session, role="analyst", name="desk-1")
    other = create_key(session, role="analyst", name="desk-2")
    assert re.fullmatch(r"sq_[A-Za-z0-9_-]{43}", raw) and raw != other  # 32 random bytes, URL-safe
    row = session.scalar(select(ApiKey).where(ApiKey.name == "desk-1"))
    assert row.key_hash == hashlib.sha256(raw.encode()).hexdigest() == hash_key(raw)
    assert row.prefix == raw[:8] and row.role == "analyst" and raw not in (row.key_hash, row.prefix)
    assert lookup(session, raw).name == "desk-1"
    assert lookup(session, raw + "x") is None and lookup(session, "") is None and lookup(session, None) is None


def test_creating_and_revoking_are_audited(session):
    raw = create_key(session, role="ingest", name="hotline")
    revoke_key(session, name="hotline")
    assert lookup(session, raw) is None
    log = [(a.actor, a.action, a.target, a.detail) for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert log == [("cli", "key.create", "hotline", {"role": "ingest"}), ("cli", "key.revoke", "hotline", None)]


def test_mistakes_are_named(session):
    with pytest.raises(ValueError, match=r"role must be one of \('ingest', 'analyst', 'admin'\), got 'root'"):
        create_key(session, role="root", name="x")
    create_key(session, role="admin", name="ops")
    with pytest.raises(ValueError, match="a key named 'ops' already exists; pick another name or revoke it first"):
        create_key(session, role="admin", name="ops")
    with pytest.raises(ValueError, match="no key named 'nobody'"):
        revoke_key(session, name="nobody")
