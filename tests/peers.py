"""Real peers for the tests: an in-process Storage SCP, a ``cardiogate serve`` subprocess,
a pynetdicom SCU and dcmtk's tools. Data comes from ``cardiogate_phantoms``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification

from cardiogate.config import Settings, load_settings
from cardiogate.dicom.admission import AssociationSlots
from cardiogate.dicom.listener import Listener, open_listen_socket
from cardiogate.dicom.spool import Spool
from cardiogate.logs import quiet_pydicom
from cardiogate.metrics import PrometheusIngestSink
from cardiogate.store import Store

REPO = Path(__file__).resolve().parents[1]


def dcmtk(tool: str) -> str:
    """The path of a dcmtk tool. pynetdicom installs console scripts of the same names
    (storescu, echoscu, ...) into the virtual environment; those are not dcmtk."""
    venv_bin = Path(sys.prefix) / "bin"
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and Path(directory).resolve() != venv_bin.resolve():
            found = shutil.which(tool, path=directory)
            if found:
                return found
    if os.environ.get("CI"):  # .ci/run installs dcmtk: missing there is a failure
        pytest.fail(f"dcmtk's {tool} is not installed")
    pytest.skip(f"dcmtk's {tool} is not installed")


def dciodvfy(path: Path) -> list[str]:
    """dicom3tools' IOD check of one file, as lines; skips without it, fails under CI."""
    exe = shutil.which("dciodvfy")
    if exe is None:
        if os.environ.get("CI"):  # .ci/run installs dicom3tools: missing there is a failure
            pytest.fail("dicom3tools' dciodvfy is not installed")
        pytest.skip("dicom3tools' dciodvfy is not installed")
    proc = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSCP:
    """An in-process listener on a loopback port with its own spool and SQLite file."""

    settings: Settings
    listener: Listener
    store: Store
    spool: Spool
    port: int
    extras: dict[str, Any] = field(default_factory=dict)


def start_scp(tmp_path: Path, **overrides: Any) -> RunningSCP:
    quiet_pydicom()
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "dicom_host": "127.0.0.1",
        "dicom_port": 0,
        "http_port": 0,
        "min_free_disk_mb": 1,
        "listener_processes": 1,
    }
    values.update(overrides)
    settings = load_settings(**values)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    spool = Spool(settings.spool_dir)
    spool.prepare()
    store = Store(settings.effective_database_url)
    store.create_schema()
    sock = open_listen_socket("127.0.0.1", 0)
    slots = AssociationSlots(settings.max_associations)
    listener = Listener(settings, spool, store, PrometheusIngestSink(), slots, sock)
    listener.start()
    return RunningSCP(settings, listener, store, spool, listener.port)


def scu(calling_ae: str = "TESTSCU") -> AE:
    """A pynetdicom SCU proposing every storage SOP class (as a PACS does) and Verification."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    for cx in StoragePresentationContexts[:120]:
        ae.add_requested_context(cx.abstract_syntax)
    return ae


def send(port: int, datasets: list[Dataset], calling_ae: str = "TESTSCU") -> list[int]:
    """Send datasets over one association; return the status of each C-STORE."""
    ae = AE(ae_title=calling_ae)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    assert assoc.is_established, "association was not accepted"
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    dicom_port: int
    http_port: int
    data_dir: Path
    log_path: Path
    configured_token: str | None = None
    https_ca: Path | None = None  # set when the API is served over HTTPS

    @property
    def base_url(self) -> str:
        scheme = "http" if self.https_ca is None else "https"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify``: trust ``https_ca`` when the API is served over HTTPS."""
        if self.https_ca is None:
            return True
        return ssl.create_default_context(cafile=str(self.https_ca))

    @property
    def api_token(self) -> str | None:
        """CARDIOGATE_API_TOKEN if the test set it, else the token the service made in its
        data dir on first start, read as an operator would (None with auth off)."""
        if self.configured_token is not None:
            return self.configured_token
        path = self.data_dir / "api-token"
        return path.read_text(encoding="ascii").strip() if path.exists() else None

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header for ``/api/v1``."""
        token = self.api_token
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_serve(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60,
    https_ca: Path | None = None,
) -> ServeProcess:
    """Start ``cardiogate serve`` as a subprocess on free loopback ports; wait for /readyz
    (over HTTPS trusting ``https_ca`` when given)."""
    dicom_port, http_port = free_port(), free_port()
    log_path = data_dir.parent / f"serve-{dicom_port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "CARDIOGATE_DATA_DIR": str(data_dir),
        "CARDIOGATE_DICOM_HOST": "127.0.0.1",
        "CARDIOGATE_DICOM_PORT": str(dicom_port),
        "CARDIOGATE_HTTP_HOST": "127.0.0.1",
        "CARDIOGATE_HTTP_PORT": str(http_port),
        "CARDIOGATE_MIN_FREE_DISK_MB": "1",
        **(env or {}),
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cardiogate", "serve"],
            cwd=REPO,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServeProcess(
        proc,
        dicom_port,
        http_port,
        data_dir,
        log_path,
        full_env.get("CARDIOGATE_API_TOKEN"),
        https_ca,
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cardiogate serve exited early:\n{server.log()}")
        try:
            ready = httpx.get(server.base_url + "/readyz", timeout=1, verify=server.verify)
            if ready.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_serve(server, kill=True)
    raise RuntimeError(f"cardiogate serve not ready in {ready_timeout} s:\n{server.log()}")


def stop_serve(server: ServeProcess, *, kill: bool = False, timeout: float = 30) -> int:
    """SIGTERM (or SIGKILL to the whole process group) and wait; return the exit code."""
    if server.proc.poll() is None:
        if kill:
            os.killpg(server.proc.pid, signal.SIGKILL)
        else:
            server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(timeout)
