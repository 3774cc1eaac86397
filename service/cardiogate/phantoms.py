"""The phantoms (``cardiogate_phantoms``): a distribution of their own that the service runs
without. Only ``cardiogate demo`` and ``cardiogate synth`` use them, imported when they run::

    try:
        from cardiogate_phantoms import make_ct_series
    except ModuleNotFoundError as e:
        phantoms_missing(e)
"""

from __future__ import annotations

from typing import NoReturn

from cardiogate.errors import ConfigurationError

PACKAGE = "cardiogate_phantoms"
MISSING = (
    "the phantoms are not installed: pip install ./service/phantoms "
    "(a separate distribution; the service runs without it)"
)


def phantoms_missing(e: ModuleNotFoundError) -> NoReturn:
    """Raise a :class:`ConfigurationError` saying how to install the phantoms when it is
    they that are missing; a module the installed phantoms lack is raised as it came."""
    if (e.name or "").partition(".")[0] == PACKAGE:
        raise ConfigurationError(MISSING) from e
    raise e
