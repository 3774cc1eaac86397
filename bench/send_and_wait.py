"""Send a DICOM folder to cardiogate over C-STORE, then wait for its job and print the series.

python bench/send_and_wait.py FOLDER DICOM_PORT HTTP_BASE_URL TOKEN_FILE     (bench/gpu_check.sh)

TOKEN_FILE is the service's API token file (``<data_dir>/api-token``).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pydicom
from pynetdicom import AE, StoragePresentationContexts


def send(folder: Path, port: int) -> str:
    """C-STORE every ``*.dcm`` under ``folder`` on one association; returns the series UID."""
    ae = AE(ae_title="GPUCHECK")
    ae.requested_contexts = StoragePresentationContexts[:120]
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    if not assoc.is_established:
        raise SystemExit("association rejected")
    series = ""
    try:
        for path in sorted(folder.glob("*.dcm")):
            ds = pydicom.dcmread(path)
            series = str(ds.SeriesInstanceUID)
            status = assoc.send_c_store(ds)
            if status.Status != 0x0000:
                raise SystemExit(f"{path.name}: C-STORE status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return series


def wait_for_job(http: str, series: str, token: str, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        f"{http}/api/v1/series/{series}", headers={"Authorization": f"Bearer {token}"}
    )
    while True:
        with urllib.request.urlopen(request) as response:
            body: dict[str, Any] = json.load(response)
        state = (body.get("job") or {}).get("state")
        if state in ("reported", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def main() -> int:
    folder, port, http = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    token = Path(sys.argv[4]).read_text(encoding="ascii").strip()
    body = wait_for_job(http, send(folder, port), token)
    print(json.dumps(body, indent=1))
    return 0 if (body.get("job") or {}).get("state") == "reported" else 1


if __name__ == "__main__":
    sys.exit(main())
