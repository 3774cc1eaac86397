"""Delivery of result objects to the configured destinations: the outbox files, the retry
policy and the C-STORE SCU thread that sends them."""

from cardiogate.delivery.backoff import Backoff
from cardiogate.delivery.files import OutboxFiles
from cardiogate.delivery.sender import Sender

__all__ = ["Backoff", "OutboxFiles", "Sender"]
