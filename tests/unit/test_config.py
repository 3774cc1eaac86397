"""Settings: defaults, precedence (flags > env > YAML > defaults), parsing and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cardiogate.config import Destination, load_settings
from cardiogate.errors import ConfigurationError
from cardiogate.tasks import load_tasks


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CARDIOGATE_* variable from the caller's shell leaks in; relative paths land here."""
    for name in list(os.environ):
        if name.startswith("CARDIOGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "cardiogate.yaml"
    path.write_text(text)
    monkeypatch.setenv("CARDIOGATE_CONFIG", str(path))
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings()
    assert s.ae_title == "CARDIOGATE"
    assert s.dicom_port == 11112
    assert s.http_port == 8080
    assert s.data_dir == Path("./data")
    assert s.quiet_seconds == 10.0
    assert s.allowed_calling_aets == []
    assert s.destinations == []
    assert s.api_token is None
    assert s.spool_dir == Path("data/spool")
    expected_db = (tmp_path / "data" / "cardiogate.db").resolve()
    assert s.effective_database_url == f"sqlite:///{expected_db}"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARDIOGATE_AE_TITLE", "MYSCP")
    monkeypatch.setenv("CARDIOGATE_DICOM_PORT", "104")
    monkeypatch.setenv("CARDIOGATE_HTTP_PORT", "9090")
    monkeypatch.setenv("CARDIOGATE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CARDIOGATE_QUIET_SECONDS", "2.5")
    monkeypatch.setenv("CARDIOGATE_API_TOKEN", "t" * 16)
    s = load_settings()
    assert (s.ae_title, s.dicom_port, s.http_port) == ("MYSCP", 104, 9090)
    assert s.data_dir == tmp_path / "elsewhere"
    assert s.quiet_seconds == 2.5
    assert s.api_token == "t" * 16
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'cardiogate.db'}"


def test_database_url_setting_wins_over_the_sqlite_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARDIOGATE_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/cg")
    assert load_settings().effective_database_url == "postgresql+psycopg://u@127.0.0.1/cg"


def test_yaml_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _yaml(
        tmp_path,
        monkeypatch,
        "ae_title: YAMLSCP\ndicom_port: 2000\nquiet_seconds: 4\n"
        "allowed_calling_aets: [PACS, CT1]\n",
    )
    s = load_settings()
    assert (s.ae_title, s.dicom_port, s.quiet_seconds) == ("YAMLSCP", 2000, 4.0)
    assert s.allowed_calling_aets == ["PACS", "CT1"]
    assert s.http_port == 8080  # not in the file: the default


def test_environment_beats_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _yaml(tmp_path, monkeypatch, "ae_title: YAMLSCP\ndicom_port: 2000\n")
    monkeypatch.setenv("CARDIOGATE_DICOM_PORT", "3000")
    s = load_settings()
    assert s.dicom_port == 3000
    assert s.ae_title == "YAMLSCP"


def test_keyword_overrides_beat_environment_and_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _yaml(tmp_path, monkeypatch, "dicom_port: 2000\nquiet_seconds: 4\n")
    monkeypatch.setenv("CARDIOGATE_DICOM_PORT", "3000")
    monkeypatch.setenv("CARDIOGATE_AE_TITLE", "ENVSCP")
    s = load_settings(dicom_port=4000, ae_title="FLAGSCP", quiet_seconds=None)
    assert (s.dicom_port, s.ae_title) == (4000, "FLAGSCP")
    assert s.quiet_seconds == 4.0  # a flag left unset (None) does not override


def test_lists_parse_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDIOGATE_ALLOWED_CALLING_AETS", '["PACS", "MODALITY1"]')
    monkeypatch.setenv(
        "CARDIOGATE_DESTINATIONS",
        '[{"ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242},'
        ' {"ae_title": "VIEWER", "host": "127.0.0.1", "port": 104}]',
    )
    s = load_settings()
    assert s.allowed_calling_aets == ["PACS", "MODALITY1"]
    assert s.destinations == [
        Destination(ae_title="ORTHANC", host="127.0.0.1", port=4242),
        Destination(ae_title="VIEWER", host="127.0.0.1", port=104),
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CARDIOGATE_DICOM_PORT", "abc"),
        ("CARDIOGATE_DICOM_PORT", "70000"),
        ("CARDIOGATE_HTTP_PORT", "-1"),
        ("CARDIOGATE_AE_TITLE", "A" * 17),
        ("CARDIOGATE_AE_TITLE", "BAD\\AE"),
        ("CARDIOGATE_AE_TITLE", "   "),
        ("CARDIOGATE_API_TOKEN", "short"),
        ("CARDIOGATE_QUIET_SECONDS", "0"),
        ("CARDIOGATE_LOG_LEVEL", "LOUD"),
        ("CARDIOGATE_MAX_ASSOCIATIONS", "0"),
        ("CARDIOGATE_ALLOWED_CALLING_AETS", '["' + "P" * 17 + '"]'),
        ("CARDIOGATE_DESTINATIONS", '[{"ae_title": "X", "host": "127.0.0.1", "port": 0}]'),
        ("CARDIOGATE_DESTINATIONS", '[{"ae_title": "X", "host": "127.0.0.1"}]'),
        # Values that are not JSON at all must be reported the same way.
        ("CARDIOGATE_ALLOWED_CALLING_AETS", "PACS"),
        ("CARDIOGATE_DESTINATIONS", "[not json"),
    ],
)
def test_bad_value_names_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert name in str(info.value)


def test_same_dicom_and_http_port_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must differ"):
        load_settings(dicom_port=9000, http_port=9000)


def test_missing_yaml_file_names_cardiogate_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CARDIOGATE_CONFIG", str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigurationError, match="CARDIOGATE_CONFIG"):
        load_settings()


def test_unknown_yaml_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _yaml(tmp_path, monkeypatch, "dicom_prot: 2000\n")
    with pytest.raises(ConfigurationError, match="CARDIOGATE_DICOM_PROT"):
        load_settings()


def test_malformed_yaml_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _yaml(tmp_path, monkeypatch, "dicom_port: [1\n")
    with pytest.raises(ConfigurationError, match="CARDIOGATE_CONFIG"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CARDIOGATE_DICOM_PORT": "abc"}, "CARDIOGATE_DICOM_PORT"),
        ({"CARDIOGATE_CONFIG": "/nonexistent/cardiogate.yaml"}, "CARDIOGATE_CONFIG"),
    ],
)
def test_cli_serve_exits_2_on_bad_settings(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOGATE_")}
    result = subprocess.run(
        [sys.executable, "-m", "cardiogate", "serve"],
        cwd=tmp_path,
        env={
            **clean,
            "CARDIOGATE_DICOM_HOST": "127.0.0.1",
            "CARDIOGATE_HTTP_HOST": "127.0.0.1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing started, nothing written


def test_a_task_setting_comes_from_its_environment_prefix_and_is_checked_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARDIOGATE_STENOSIS_REVIEW_BAND", "[0.2, 0.8]")
    assert load_tasks(load_settings())["stenosis"].settings.review_band == (0.2, 0.8)
    overridden = load_settings(tasks={"stenosis": {"review_band": [0.1, 0.9]}})
    assert load_tasks(overridden)["stenosis"].settings.review_band == (0.1, 0.9)
    monkeypatch.setenv("CARDIOGATE_STENOSIS_REVIEW_BAND", "[0.8, 0.2]")
    with pytest.raises(ConfigurationError, match="CARDIOGATE_STENOSIS_REVIEW_BAND: Value error"):
        load_tasks(load_settings())
    monkeypatch.delenv("CARDIOGATE_STENOSIS_REVIEW_BAND")
    with pytest.raises(ConfigurationError, match="CARDIOGATE_TASKS names task"):
        load_tasks(load_settings(tasks={"stenoses": {}}))
    with pytest.raises(ConfigurationError, match="CARDIOGATE_CALCIUM_THRESHOLD_HU"):
        load_tasks(load_settings(tasks={"calcium": {"threshold_hu": -5}}))


def test_destination_tls_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read until a connection")
    base = {"ae_title": "PACS", "host": "127.0.0.1", "port": 104}
    good = [{**base, "tls": True, "tls_ca_file": str(ca)}]
    monkeypatch.setenv("CARDIOGATE_DESTINATIONS", json.dumps(good))
    assert load_settings().destinations[0].tls_ca_file == ca
    for bad, message in [
        ({**base, "tls_ca_file": str(ca)}, "tls is false"),
        ({**base, "tls": True, "tls_cert_file": str(ca)}, "go together"),
        ({**base, "tls": True, "tls_ca_file": str(tmp_path / "missing.pem")}, "does not exist"),
    ]:
        monkeypatch.setenv("CARDIOGATE_DESTINATIONS", json.dumps([bad]))
        with pytest.raises(ConfigurationError, match=message):
            load_settings()


def test_replica_id_must_name_a_directory() -> None:
    settings = load_settings()
    assert (settings.replica_id, settings.spool_shared) == (None, False)
    assert settings.tmp_subdir is None
    shared = load_settings(replica_id="cardiogate-1", spool_shared=True)
    assert shared.tmp_subdir == "cardiogate-1"
    with pytest.raises(ConfigurationError, match="CARDIOGATE_REPLICA_ID"):
        load_settings(replica_id="../other")
