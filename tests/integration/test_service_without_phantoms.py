"""The service installs and runs without the phantoms (``cardiogate_phantoms``, a
distribution of their own, as in the images): every module imports, ``cardiogate serve``
answers, and the two commands that need them exit 2 saying how to install them.

Each run is a fresh interpreter whose first import finder refuses ``cardiogate_phantoms``,
as an environment without the package would."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from peers import REPO, free_port

SERVICE = REPO / "service" / "cardiogate"
PACKAGE = "cardiogate_phantoms"
SAID = (
    "cardiogate: the phantoms are not installed: pip install ./service/phantoms "
    "(a separate distribution; the service runs without it)\n"
)
NO_PHANTOMS = f"""
import runpy, sys

class NoPhantoms:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {PACKAGE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NoPhantoms())
"""
RUN_CLI = NO_PHANTOMS + 'runpy.run_module("cardiogate", run_name="__main__", alter_sys=True)\n'
IMPORT_ALL = (
    NO_PHANTOMS
    + """
import importlib, pkgutil, cardiogate
names = [m.name for m in pkgutil.walk_packages(cardiogate.__path__, "cardiogate.")]
for name in names:  # __main__ runs the CLI; alembic runs the migrations' env.py itself
    if name not in ("cardiogate.__main__", "cardiogate.store.migrations.env"):
        importlib.import_module(name)
assert not [m for m in sys.modules if m.startswith("cardiogate_phantoms")]
print(len(names))
"""
)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_module_of_the_service_imports_without_them() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    modules = len(list(SERVICE.rglob("*.py")))
    assert int(proc.stdout) >= modules - 1  # walk_packages names every module but the root


def test_serve_answers_without_them(tmp_path: Path) -> None:
    http_port = free_port()
    env = {
        **os.environ,
        "CARDIOGATE_DATA_DIR": str(tmp_path / "data"),
        "CARDIOGATE_DICOM_HOST": "127.0.0.1",
        "CARDIOGATE_DICOM_PORT": str(free_port()),
        "CARDIOGATE_HTTP_HOST": "127.0.0.1",
        "CARDIOGATE_HTTP_PORT": str(http_port),
        "CARDIOGATE_MIN_FREE_DISK_MB": "1",
        "CARDIOGATE_MODELS_DIR": str(REPO / "models"),  # the shipped models, as in the images
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", RUN_CLI, "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert ready is not None, log.read_text(errors="replace")
        assert ready.json()["ready"], ready.text  # models loaded, listener up, store reachable
        alive = httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=5)
        assert alive.json() == {"status": "alive"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text(errors="replace")


def test_synth_exits_2_saying_how_to_install_them(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "synth", "ct", "--out", str(tmp_path / "ct"))
    assert proc.returncode == 2
    assert proc.stderr == SAID
    assert not (tmp_path / "ct").exists()


def test_demo_exits_2_saying_how_to_install_them(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "demo", "--json")
    assert proc.returncode == 2
    assert proc.stderr.endswith(SAID)  # after the progress lines of the service's start


def _imported_at_import_time(tree: ast.Module) -> set[str]:
    """Top-level names of what a module imports when it is imported: its body, class bodies
    and module-level blocks, not function bodies."""
    found: set[str] = set()
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.partition(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return found


def test_no_module_of_the_service_imports_them_at_import_time() -> None:
    importing = [
        str(path.relative_to(REPO))
        for path in sorted(SERVICE.rglob("*.py"))
        if PACKAGE in _imported_at_import_time(ast.parse(path.read_text(), str(path)))
    ]
    assert importing == []
    # the walk does see a module-level import: the demos' lazy one, hoisted
    hoisted = ast.parse(f"from {PACKAGE} import make_ct_series\ndef f() -> None: ...")
    assert PACKAGE in _imported_at_import_time(hoisted)
