"""Auth on by default, against ``cardiogate serve`` as an operator starts it: the first start
makes a token file only its owner can read, later starts reuse it, /api/v1 and the status page
need it, /healthz, /readyz (and by default /metrics) do not."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from peers import REPO, ServeProcess, start_serve, stop_serve
from tiny_model import write_model

TOKEN = "a-configured-token-0123456789"


@pytest.fixture
def models(tmp_path: Path) -> dict[str, str]:
    """A tiny real model and one listener process, so that the service starts quickly."""
    write_model(tmp_path / "models" / "tiny")
    return {
        "CARDIOGATE_MODELS_DIR": str(tmp_path / "models"),
        "CARDIOGATE_LISTENER_PROCESSES": "1",
    }


def _get(server: ServeProcess, path: str, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(server.base_url + path, headers=headers, timeout=5)


def test_first_start_makes_the_token_file_and_a_restart_reuses_it(
    tmp_path: Path, models: dict[str, str]
) -> None:
    data_dir = tmp_path / "data"
    server = start_serve(data_dir, env=models)
    try:
        token_file = data_dir / "api-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text(encoding="ascii").strip()
        assert f"cat {token_file.resolve()}" in server.log()
        assert token not in server.log()

        assert _get(server, "/api/v1/jobs").status_code == 401
        assert _get(server, "/api/v1/jobs", "x" * len(token)).status_code == 401
        assert _get(server, "/api/v1/jobs", token).json()["total"] == 0
        assert _get(server, "/").status_code == 401  # the login form
        assert _get(server, "/", token).status_code == 200
        assert _get(server, "/healthz").status_code == 200
        assert _get(server, "/readyz").status_code == 200
        assert "cardiogate_build_info" in _get(server, "/metrics").text
    finally:
        assert stop_serve(server) == 0

    restarted = start_serve(data_dir, env=models)
    try:
        assert token_file.read_text(encoding="ascii").strip() == token
        assert f"API token read from {token_file.resolve()}" in restarted.log()
        assert _get(restarted, "/api/v1/jobs", token).status_code == 200
    finally:
        assert stop_serve(restarted) == 0


def test_metrics_guarded_when_configured_with_a_configured_token(
    tmp_path: Path, models: dict[str, str]
) -> None:
    env = {**models, "CARDIOGATE_API_TOKEN": TOKEN, "CARDIOGATE_METRICS_AUTH": "true"}
    server = start_serve(tmp_path / "data", env=env)
    try:
        assert not (tmp_path / "data" / "api-token").exists()
        assert _get(server, "/metrics").status_code == 401
        assert "cardiogate_build_info" in _get(server, "/metrics", TOKEN).text
        assert _get(server, "/api/v1/jobs", TOKEN).status_code == 200
        assert _get(server, "/readyz").status_code == 200
    finally:
        assert stop_serve(server) == 0


def test_auth_turned_off_opens_the_api_and_says_so(tmp_path: Path, models: dict[str, str]) -> None:
    env = {**models, "CARDIOGATE_AUTH_ENABLED": "false"}
    server = start_serve(tmp_path / "data", env=env)
    try:
        assert _get(server, "/api/v1/jobs").status_code == 200
        assert _get(server, "/").status_code == 200
        assert "WARNING cardiogate.api.token_file" in server.log()
        assert "auth is OFF" in server.log()
        assert not (tmp_path / "data" / "api-token").exists()
    finally:
        assert stop_serve(server) == 0


def test_a_group_readable_token_file_stops_start_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    token_file = data_dir / "api-token"
    token_file.write_text("a-token-someone-else-may-have-read\n")
    token_file.chmod(0o640)
    proc = subprocess.run(
        [sys.executable, "-m", "cardiogate", "serve"],
        cwd=REPO,
        env={
            **os.environ,
            "CARDIOGATE_DATA_DIR": str(data_dir),
            "CARDIOGATE_DICOM_HOST": "127.0.0.1",
            "CARDIOGATE_DICOM_PORT": "0",
            "CARDIOGATE_HTTP_HOST": "127.0.0.1",
            "CARDIOGATE_HTTP_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "readable or writable by others (mode 0640)" in proc.stderr
    assert "someone-else" not in proc.stderr + proc.stdout
