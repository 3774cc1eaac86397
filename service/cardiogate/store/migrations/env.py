"""Alembic's environment: migrations run on the connection the store hands over (there is
no alembic.ini; :func:`cardiogate.store.schema.migrate` configures Alembic)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cardiogate.store.tables import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("cardiogate's migrations run only through Store.create_schema")
_run(_connection)
