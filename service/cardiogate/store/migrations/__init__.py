"""Alembic migrations of the store's schema, applied at start-up (:mod:`.upgrade`)."""
