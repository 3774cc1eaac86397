"""Every store test runs on both databases the service supports: an SQLite file and a real
PostgreSQL server (a throwaway cluster, one fresh database per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from postgres import PostgresCluster


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()
