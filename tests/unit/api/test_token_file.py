"""The API token file: made once with mode 0600, reused, refused when others can read it."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from cardiogate.api.token_file import TOKEN_FILE, load_or_create, resolve_api_token
from cardiogate.config import load_settings
from cardiogate.errors import ConfigurationError

CONFIGURED = "a-configured-token-0123456789"


def test_first_start_makes_an_owner_only_token_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    token, made = load_or_create(path)
    assert made
    assert len(token) >= 40  # token_urlsafe(32): 256 random bits
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="ascii").strip() == token

    again, made_again = load_or_create(path)
    assert (again, made_again) == (token, False)
    assert load_or_create(tmp_path / "other")[0] != token


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_token_file_others_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / TOKEN_FILE
    token, _ = load_or_create(path)
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match=r"readable or writable by others") as caught:
        load_or_create(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert token not in str(caught.value)


def test_a_truncated_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_FILE
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="fewer than 16 characters"):
        load_or_create(path)


def test_resolve_logs_where_the_token_is_never_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="cardiogate.api.token_file"):
        token = resolve_api_token(settings)
        assert resolve_api_token(settings) == token
    assert token is not None
    path = str((tmp_path / TOKEN_FILE).resolve())
    made, read = (r.getMessage() for r in caplog.records)
    assert made.startswith(f"API token generated and saved in {path}")
    assert read.startswith(f"API token read from {path}")
    assert f"cat {path}" in made
    assert token not in caplog.text


def test_a_configured_token_wins_and_no_file_is_made(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, api_token=CONFIGURED)
    assert resolve_api_token(settings) == CONFIGURED
    assert not (tmp_path / TOKEN_FILE).exists()


def test_auth_off_is_explicit_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path, auth_enabled=False)
    with caplog.at_level(logging.WARNING, logger="cardiogate.api.token_file"):
        assert resolve_api_token(settings) is None
    assert "auth is OFF" in caplog.text
    assert not (tmp_path / TOKEN_FILE).exists()


@pytest.mark.parametrize(
    "contradiction", [{"api_token": CONFIGURED}, {"metrics_auth": True}], ids=str
)
def test_auth_off_with_a_token_or_guarded_metrics_is_refused(
    tmp_path: Path, contradiction: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError, match="auth_enabled is false"):
        load_settings(data_dir=tmp_path, auth_enabled=False, **contradiction)
