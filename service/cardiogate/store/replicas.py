"""Which replica a process is, and which rows it may act on.

Several replicas share one PostgreSQL database, each with its own data directory: a
series' instances are in the spool of the replica that received them, a job's result
objects in the outbox of the replica that ran it. So a replica claims only jobs and outbox
rows whose ``replica_id`` is its own, unless the data directory is a volume they all mount
(``shared``). Rows from before replicas were recorded (``replica_id`` NULL) are anyone's.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, true


@dataclass(frozen=True, slots=True)
class Replica:
    """This process' replica: its id (default: the host name) and whether its data
    directory (spool and outbox) is shared with every other replica."""

    id: str = field(default_factory=socket.gethostname)
    shared: bool = False

    @classmethod
    def named(cls, replica_id: str | None, shared: bool = False) -> Replica:
        """The replica ``replica_id`` (None: the host name)."""
        return cls(replica_id or socket.gethostname(), shared)

    def may_use(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """A condition on a ``replica_id`` column: rows whose files this replica can read."""
        if self.shared:
            return true()
        return (column == self.id) | column.is_(None)
