"""Persistence: the tables and the queries the rest of the service uses."""

from cardiogate.store.records import InstanceRecord, SeriesSummary, StoredInstance, StudySummary
from cardiogate.store.replicas import Replica
from cardiogate.store.store import Store

__all__ = ["InstanceRecord", "Replica", "SeriesSummary", "Store", "StoredInstance", "StudySummary"]
