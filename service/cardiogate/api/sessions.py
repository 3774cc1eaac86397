"""Status-page sessions: a random id in an HttpOnly cookie, kept in memory.

The cookie never holds the token. A session lives ``ttl_seconds`` from login, ends at
logout, and every session ends when the service restarts (log in again)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

COOKIE = "cardiogate_session"
TTL_SECONDS = 12 * 3600.0
MAX_SESSIONS = 1000  # the oldest session is dropped beyond this


class Sessions:
    """Session ids and their expiry times (monotonic clock)."""

    def __init__(self, ttl_seconds: float = TTL_SECONDS, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_sessions = max_sessions
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def create(self) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._expiry[session_id] = time.monotonic() + self.ttl_seconds
            while len(self._expiry) > self.max_sessions:
                self._expiry.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        with self._lock:
            expiry = self._expiry.get(session_id)
            if expiry is None:
                return False
            if expiry < time.monotonic():
                del self._expiry[session_id]
                return False
            return True

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._expiry.pop(session_id, None)
