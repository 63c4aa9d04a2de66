"""Helpers for service tests: the databases to run against."""
from __future__ import annotations

import os

import pytest


def database_urls() -> list:
    """SQLite always; PostgreSQL when SUQIU_TEST_POSTGRES_URL is set (.ci/run sets it)."""
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        not os.environ.get("SUQIU_TEST_POSTGRES_URL"),
        reason="SUQIU_TEST_POSTGRES_URL not set (.ci/run starts a PostgreSQL server and sets it)")))
    return params
