"""Persistence: the tables and the queries the rest of the service uses."""

from cardiogate.store.records import InstanceRecord, SeriesSummary, StoredInstance, StudySummary
from cardiogate.store.store import Store

__all__ = ["InstanceRecord", "SeriesSummary", "Store", "StoredInstance", "StudySummary"]
