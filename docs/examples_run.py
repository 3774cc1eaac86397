"""The documentation's executed examples: ``cardiogate demo``, ``synth`` + ``analyze``,
``route explain`` on a five-series study, and the jobs API of ``cardiogate serve`` on the
demo's data, each run as a user runs it (this interpreter's ``python -m cardiogate``, from the
repository root, no ``CARDIOGATE_*`` variables but the ones shown).

:func:`mask_example` hides what changes from run to run (times, UIDs, ports, job ids) so
that a test can compare a fresh run with the files under ``docs/examples``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
THIN_ROUTING = '{"calcium_slice_thickness_mm": [0.5, 3.5]}'
SHOWN_TMP = "/tmp"  # the temporary folder, as the pages show it
VOLATILE_KEYS = frozenset({"id", "created_at", "finished_at"})
_MASKS = (
    (re.compile(r"\[\s*\d+(\.\d+)? s\]"), "[t s]"),
    (re.compile(r"Done in \d+(\.\d+)? s"), "Done in t s"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"\b\d+(\.\d+){4,}"), "<uid>"),  # a UID, whole or cut short by an ellipsis
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"\b\w+ExecutionProvider\b"), "<provider>"),
)


def _mask_text(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<masked>" if k in VOLATILE_KEYS else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_mask_json(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return _mask_text(value) if isinstance(value, str) else value


def mask_example(name: str, text: str) -> str:
    """``text`` without what changes between runs; progress lines (``[t s] ...``), whose
    order depends on which series completes first, sorted."""
    if name.endswith(".json"):
        return json.dumps(_mask_json(json.loads(text)), indent=2, sort_keys=True)
    lines = _mask_text(text).splitlines()
    progress = sorted(line for line in lines if line.startswith("[t s]"))
    it = iter(progress)
    return "\n".join(next(it) if line.startswith("[t s]") else line for line in lines)


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDIOGATE_")}
    return {**env, **extra}


def _run(args: list[str], tmp: Path, env: Mapping[str, str] | None = None) -> str:
    """``$ cardiogate ARGS`` and what it printed on stdout, temporary paths as shown."""
    done = subprocess.run(
        [sys.executable, "-m", "cardiogate", *args],
        cwd=REPO,
        env=_environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cardiogate {args[0]} exited {done.returncode}:\n{done.stderr}")
    shown = " ".join(f"{k}='{v}'" for k, v in (env or {}).items())
    command = " ".join([*([shown] if shown else []), "cardiogate", *args])
    return f"$ {command}\n{done.stdout}".replace(str(tmp), SHOWN_TMP)


def _study(root: Path) -> None:
    """A CT study as a PACS forwards it: a localizer, the 3 mm calcium scan, 2.5 mm and
    1 mm reconstructions of it and a CTA (the routing page's example)."""
    from cardiogate_phantoms import make_ct_series, write_series

    small: dict[str, Any] = {"n_slices": 10, "rows": 32, "columns": 32, "keep_phantom": False}
    base = make_ct_series(1, slice_thickness_mm=3.0, **small)
    same = {**small, "study_instance_uid": base.datasets[0].StudyInstanceUID}
    series = [
        (1, "Topogram 0.6 T20s", make_ct_series(5, **{**same, "n_slices": 1})),
        (2, "Calcium Score 3.0mm", base),
        (3, "Calcium Score 2.5mm", make_ct_series(2, slice_thickness_mm=2.5, **same)),
        (4, "Calcium Score 1.0mm", make_ct_series(3, slice_thickness_mm=1.0, **same)),
        (5, "CTA Coronary 3.0mm", make_ct_series(4, contrast=True, **same)),
    ]
    for number, description, s in series:
        for ds in s.datasets:
            ds.SeriesNumber, ds.SeriesDescription = number, description
            if number == 1:
                ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        write_series(s, root / f"series{number}")
        (root / f"series{number}" / "truth.json").unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only
        return json.loads(answer.read())


def _api_jobs(data_dir: Path, log: Path) -> str:
    """``GET /api/v1/jobs`` of ``cardiogate serve`` on the demo's data."""
    http = _free_port()
    args = ["--data-dir", str(data_dir), "--http-host", "127.0.0.1", "--http-port", str(http)]
    args += ["--dicom-host", "127.0.0.1", "--dicom-port", str(_free_port())]
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "cardiogate", "serve", *args],
            cwd=REPO,
            env=_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"cardiogate serve exited {server.returncode}: see {log}")
            try:
                if _get(f"{base}/readyz").get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cardiogate serve not ready after 120 s: see {log}")
            time.sleep(0.25)
        token = (data_dir / "api-token").read_text().strip()
        return json.dumps(_get(f"{base}/api/v1/jobs", token), indent=2) + "\n"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def run_examples() -> dict[str, str]:
    """Every example file's text by name (about 30 s on 2 cores)."""
    tmp = Path(tempfile.mkdtemp(prefix="cardiogate-docs-"))
    try:
        examples = {"demo.txt": _run(["demo", "--keep", str(tmp / "demo")], tmp)}
        examples["analyze.txt"] = _run(
            ["synth", "ct", "--seed", "5", "--slices", "40", "--out", str(tmp / "ct")], tmp
        ) + _run(["analyze", str(tmp / "ct")], tmp)
        _study(tmp / "study")
        examples["route-explain.txt"] = _run(["route", "explain", str(tmp / "study")], tmp)
        thin = {"CARDIOGATE_ROUTING": THIN_ROUTING}
        examples["route-explain-thin.txt"] = _run(
            ["route", "explain", str(tmp / "study")], tmp, thin
        ) + _run(["route", "explain", str(tmp / "study" / "series4")], tmp, thin)
        examples["api-jobs.json"] = _api_jobs(tmp / "demo" / "data", tmp / "serve.log")
        return examples
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
