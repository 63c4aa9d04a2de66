"""Alembic environment: migrations run against the URL set by service.db.upgrade."""
from alembic import context

from service import hotspot_store  # noqa: F401 — declares the hotspot tables on Base.metadata
from service.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
