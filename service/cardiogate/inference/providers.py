"""Which ONNX Runtime execution provider actually works here, without error spew.

onnxruntime-gpu lists the TensorRT and CUDA providers whether or not their libraries can be
loaded, and prints errors to the console when they cannot. So GPU providers are only
tried where an NVIDIA device exists, and each is first probed in a subprocess whose output
is captured: the service's own log shows one line saying which provider is in use.
"""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess  # nosec B404  # runs only our own interpreter on a fixed probe script
import sys
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
DEFAULT_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", CPU)

_PROBE = """
import sys
import onnxruntime as ort
if hasattr(ort, "preload_dlls"):
    ort.preload_dlls()
options = ort.SessionOptions()
options.log_severity_level = 4
session = ort.InferenceSession(sys.argv[1], options, providers=[sys.argv[2]])
print(session.get_providers()[0])
"""


def nvidia_device_present() -> bool:
    dev = Path("/dev")
    return Path("/proc/driver/nvidia/version").exists() or any(dev.glob("nvidia[0-9]*"))


def probe(provider: str, model_path: Path, timeout: float = 300) -> bool:
    """True if a session on ``model_path`` really runs on ``provider`` (in a subprocess)."""
    try:
        result = subprocess.run(  # nosec B603  # our interpreter, fixed script, no shell
            [sys.executable, "-c", _PROBE, str(model_path), provider],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        log.info("%s probe did not finish (%s); not using it", provider, type(e).__name__)
        return False
    ok = result.returncode == 0 and result.stdout.strip().endswith(provider)
    if not ok:
        log.info("%s is not usable here; trying the next provider", provider)
    return ok


def preload_gpu_libraries() -> None:
    """Load CUDA and cuDNN from the ``nvidia-*`` wheels when they are installed beside
    onnxruntime-gpu (``pip install onnxruntime-gpu[cuda,cudnn]``), else from the system
    library path. Only called once a probe has shown they load; what onnxruntime prints
    meanwhile goes to the debug log, not the console."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        preload()
    if printed.getvalue().strip():
        log.debug("onnxruntime.preload_dlls: %s", printed.getvalue().strip())


def choose_provider(preference: Sequence[str], model_path: Path) -> str:
    """The first provider in ``preference`` that loads ``model_path``; CPU as the last resort."""
    available = set(ort.get_available_providers())
    gpu = nvidia_device_present()
    for provider in preference:
        if provider not in available:
            continue
        if provider == CPU:
            return CPU
        if gpu and probe(provider, model_path):
            preload_gpu_libraries()
            return provider
    return CPU
