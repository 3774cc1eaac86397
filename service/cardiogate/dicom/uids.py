"""UID checks and the UIDs cardiogate itself uses.

A UID that names a file is validated before any path is built (PS3.5 9.1: digits and
dots, components without leading zeros, at most 64 characters). Anything else is refused.
"""

from __future__ import annotations

import json
import re

from pydicom.uid import generate_uid

from cardiogate import __version__
from cardiogate.errors import InvalidUIDError

# pydicom's root, with a suffix of our own; replace with an organisation root in production.
UID_PREFIX = "1.2.826.0.1.3680043.8.498.77."
IMPLEMENTATION_CLASS_UID = UID_PREFIX + "1.1"
IMPLEMENTATION_VERSION_NAME = ("CARDIOGATE_" + __version__.replace(".", ""))[:16]
# the Device Observer UID of cardiogate as the observer of its reports (TID 1004)
DEVICE_OBSERVER_UID = UID_PREFIX + "1.2"

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_LENIENT_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_valid_uid(value: object, *, strict: bool = False) -> bool:
    """True if ``value`` may name a file: digits and dots, 1-64 characters.

    ``strict`` also refuses leading zeros in components (PS3.5 9.1), which some modalities
    get wrong; the spool only needs the lenient check to be safe.
    """
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return False
    return bool((_UID if strict else _LENIENT_UID).match(value))


def require_uid(keyword: str, value: object) -> str:
    """Return ``value`` when it is a usable UID, else raise :class:`InvalidUIDError`.

    The message names the attribute and its length, never the value (which a hostile
    peer controls and which could carry anything).
    """
    if value is None or value == "":
        raise InvalidUIDError(f"{keyword} is missing")
    if not isinstance(value, str) or not is_valid_uid(value):
        length = len(value) if isinstance(value, str) else 0
        raise InvalidUIDError(f"{keyword} is not a valid UID ({length} characters)")
    return value


def derived_uid(*parts: str) -> str:
    """A UID under :data:`UID_PREFIX` that is a hash of ``parts`` (PS3.5 B.2 hashing).

    The same parts always give the same UID, so a re-run of a job names its output as the
    first run did and a PACS replaces rather than duplicates it. The parts are joined
    unambiguously (``("1.2", "3")`` and ``("1.23", "")`` differ). Output objects are named
    from the source series UID, the task, the object kind and the model version, e.g.
    ``derived_uid(series_uid, "calcium", "sr", "0.2.0", "series")``.
    """
    if not parts:
        raise ValueError("derived_uid needs at least one part")
    return str(generate_uid(prefix=UID_PREFIX, entropy_srcs=[json.dumps(list(parts))]))
