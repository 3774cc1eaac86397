"""Which replica a process is: the setting when given; else the id kept in its own data
directory, so a container recreated under another host name still owns its spool; with a
shared data directory, the host name."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cardiogate.app import REPLICA_ID_FILE, resolve_replica_id
from cardiogate.config import load_settings
from cardiogate.errors import ConfigurationError


def test_the_setting_wins(tmp_path: Path) -> None:
    settings = resolve_replica_id(load_settings(data_dir=tmp_path, replica_id="cardiogate-1"))
    assert settings.replica_id == "cardiogate-1"
    assert not (tmp_path / REPLICA_ID_FILE).exists()


def test_an_own_data_directory_keeps_the_first_host_name(tmp_path: Path) -> None:
    first = resolve_replica_id(load_settings(data_dir=tmp_path / "data"))
    assert first.replica_id == socket.gethostname()
    (tmp_path / "data" / REPLICA_ID_FILE).write_text("3f2a9c1d0b7e\n")  # as another host left it
    again = resolve_replica_id(load_settings(data_dir=tmp_path / "data"))
    assert again.replica_id == "3f2a9c1d0b7e"


def test_a_shared_data_directory_uses_the_host_name(tmp_path: Path) -> None:
    (tmp_path / REPLICA_ID_FILE).write_text("someone-else\n")
    settings = resolve_replica_id(load_settings(data_dir=tmp_path, spool_shared=True))
    assert (settings.replica_id, settings.tmp_subdir) == ((socket.gethostname(),) * 2)


def test_a_kept_id_that_cannot_be_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / REPLICA_ID_FILE).write_text("../elsewhere\n")
    with pytest.raises(ConfigurationError, match="CARDIOGATE_REPLICA_ID"):
        resolve_replica_id(load_settings(data_dir=tmp_path))
