"""Alembic migrations on both databases: the migrated schema is exactly the tables' metadata
(so a column added without a revision fails here), an old database made by ``create_all``
before Alembic keeps its rows through the upgrade, and replicas that start together on one
PostgreSQL database migrate it once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from cardiogate.store import Store
from cardiogate.store.schema import BASELINE, REVIEW_PER_RESULT, _config, current, head
from cardiogate.store.tables import Base
from postgres import PostgresCluster


def _drift(engine: Engine) -> list[object]:
    """What autogenerate would change; also the unique constraints of ``reviews``, which
    it does not compare on SQLite (a verdict is per job, result and reviewer)."""
    with engine.connect() as conn:
        drift = list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
        unique = [c["column_names"] for c in inspect(conn).get_unique_constraints("reviews")]
    if unique != [["job_id", "result_digest", "reviewer"]]:
        drift.append(("reviews unique", unique))
    return drift


def test_the_migrated_schema_is_the_metadata(database_url: str) -> None:
    store = Store(database_url)
    store.create_schema()
    assert _drift(store.engine) == []
    with store.engine.connect() as conn:
        assert current(conn) == head()
    store.create_schema()  # at head already: nothing to do, nothing fails
    store.dispose()


@pytest.mark.parametrize("made_at", [BASELINE, REVIEW_PER_RESULT])
def test_a_database_from_before_alembic_is_stamped_and_upgraded_with_its_rows(
    database_url: str, made_at: str
) -> None:
    store = Store(database_url)
    with store.engine.begin() as conn:  # what create_all made before migrations existed
        command.upgrade(_config(conn), made_at)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text("INSERT INTO studies VALUES ('1.2', :t, :t)"), {"t": datetime(2024, 5, 1)}
        )
    store.create_schema()
    assert _drift(store.engine) == []
    summary = store.get_study("1.2")
    assert summary is not None
    assert summary.first_received_at == datetime(2024, 5, 1)
    with store.engine.connect() as conn:
        assert current(conn) == head()
    store.dispose()


def test_replicas_starting_together_migrate_once(postgres: PostgresCluster) -> None:
    url = postgres.new_database()
    start = f"from cardiogate.store import Store; Store({url!r}).create_schema()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    replicas = [
        subprocess.Popen([sys.executable, "-c", start], env=env, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in replicas]
    assert [p.returncode for p in replicas] == [0, 0, 0], errors
    store = Store(url)
    assert _drift(store.engine) == []
    store.dispose()
