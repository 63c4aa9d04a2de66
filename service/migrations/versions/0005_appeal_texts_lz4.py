"""appeal texts and titles compressed with lz4 on PostgreSQL 14+ built with it (a no-op
elsewhere): the digest's first run reads two years of texts, and the server decompresses
the long ones as it sends them (a million stored appeals: 1.9 s against 2.7 s with pglz,
docs/benchmarks.md). Rows stored before keep pglz until they are rewritten.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

COLUMNS = ('title', 'text')


def _lz4() -> bool:
    """Whether the server is PostgreSQL 14+ built with lz4 (it then offers it for TOAST)."""
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql' or bind.dialect.server_version_info < (14,):
        return False
    offered = bind.execute(sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return bool(offered) and 'lz4' in offered


def upgrade() -> None:
    if _lz4():
        for column in COLUMNS:
            op.execute(f'ALTER TABLE appeals ALTER COLUMN {column} SET COMPRESSION lz4')


def downgrade() -> None:
    if _lz4():
        for column in COLUMNS:
            op.execute(f'ALTER TABLE appeals ALTER COLUMN {column} SET COMPRESSION default')
