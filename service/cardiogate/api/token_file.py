"""The API token when none is configured: made on the first start, kept in the data dir.

Like Jupyter, auth is on out of the box: the first start writes a random token to
``<data_dir>/api-token`` (mode 0600, created exclusively) and logs where it is; later starts
read it back. A token file that others could read is refused, never used.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from cardiogate.config import ENV_PREFIX, Settings
from cardiogate.errors import ConfigurationError

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # nosec B105  # the token file's name, not a token
MIN_LENGTH = 16


def resolve_api_token(settings: Settings) -> str | None:
    """The token that guards the API: the configured one, else the data dir's token file
    (made if missing); None when auth is turned off.

    Raises
    ------
    ConfigurationError
        When the token file is readable by others, not ours, unreadable or too short.
    """
    if not settings.auth_enabled:
        log.warning(
            "auth is OFF (CARDIOGATE_AUTH_ENABLED=false): anyone who reaches the HTTP port "
            "can read and change jobs"
        )
        return None
    if settings.api_token is not None:
        return settings.api_token
    path = settings.data_dir / TOKEN_FILE
    token, made = load_or_create(path)
    shown = path.resolve()
    log.info(
        "API token %s %s (owner-only); read it with: cat %s",
        "generated and saved in" if made else "read from",
        shown,
        shown,
    )
    return token


def token_source(settings: Settings | None) -> str:
    """Where the API token is held, for a 401 answer: the setting or the file, never the
    token itself."""
    if settings is None:
        return f"{ENV_PREFIX}API_TOKEN, or when that is unset the file {TOKEN_FILE} in the data dir"
    if settings.api_token is not None:
        return f"the api_token setting ({ENV_PREFIX}API_TOKEN)"
    path = (settings.data_dir / TOKEN_FILE).resolve()
    return f"the file {path}, made on the first start ({ENV_PREFIX}API_TOKEN replaces it)"


def load_or_create(path: Path) -> tuple[str, bool]:
    """The token in ``path`` and whether this call made it."""
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path), False
    except OSError as e:
        raise ConfigurationError(f"cannot create the API token file {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        path.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write the API token file {path}: {e.strerror}") from e
    return token, True


def _read(path: Path) -> str:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the API token file {path} is readable or writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {path}` or delete it "
                "to have a new one made"
            )
        if info.st_uid != os.getuid():
            raise ConfigurationError(f"the API token file {path} belongs to another user")
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise ConfigurationError(f"cannot read the API token file {path}: {why}") from e
    if len(token) < MIN_LENGTH:
        raise ConfigurationError(
            f"the API token file {path} holds fewer than {MIN_LENGTH} characters: delete it "
            "to have a new one made"
        )
    return token
