"""DIMSE status codes used by the SCP, by name (PS3.4 Annex B.2, PS3.7 C)."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    SUCCESS = 0x0000
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    PROCESSING_FAILURE = 0x0110
    # C-STORE warnings (PS3.4 B.2.3): the object was stored
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007


STORED = frozenset(
    {
        Status.SUCCESS,
        Status.COERCION_OF_DATA_ELEMENTS,
        Status.ELEMENTS_DISCARDED,
        Status.DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING,
    }
)


class Reject:
    """A-ASSOCIATE-RJ (result, source, reason) triples, PS3.8 9.3.4."""

    CALLING_AE_NOT_RECOGNISED = (0x01, 0x01, 0x03)  # permanent, service user
    TEMPORARY_CONGESTION = (0x02, 0x03, 0x01)  # transient, service provider (presentation)
    LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)  # transient, service provider (presentation)
