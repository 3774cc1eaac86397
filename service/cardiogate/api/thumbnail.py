"""A small PNG of a job's key image (the Secondary Capture it sent), for the status page.

Read from the outbox file the job wrote, so the page shows exactly what the PACS got. The
key image carries findings and the AI notice burned in, never patient names or IDs."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.errors import InvalidDicomError
from pydicom.uid import SecondaryCaptureImageStorage

from cardiogate.errors import CardiogateError
from cardiogate.store.outbox import OutboxRow

MAX_SIDE_PX = 256


class KeyImageError(CardiogateError):
    """A job's key image file is missing or cannot be rendered."""


def key_image_path(rows: Sequence[OutboxRow]) -> str | None:
    """The outbox path of the job's key image (one row per destination: any will do)."""
    for row in rows:
        if row.SOPClassUID == SecondaryCaptureImageStorage:
            return row.path
    return None


def thumbnail_png(path: Path, max_side: int = MAX_SIDE_PX) -> bytes:
    """The image in the Part 10 file ``path``, at most ``max_side`` pixels a side, as PNG.

    Raises
    ------
    KeyImageError
        When the file is missing or holds no image Pillow can show.
    """
    try:
        ds = pydicom.dcmread(path)
        image = _to_image(ds.pixel_array, str(ds.get("PhotometricInterpretation", "")))
    except (
        OSError,
        InvalidDicomError,
        AttributeError,
        ValueError,
        TypeError,
        NotImplementedError,  # pixel data in a transfer syntax no installed decoder reads
        RuntimeError,
    ) as e:
        raise KeyImageError(f"the key image cannot be rendered ({type(e).__name__})") from e
    image.thumbnail((max_side, max_side))
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _to_image(pixels: np.ndarray[Any, Any], photometric: str) -> Image.Image:
    if photometric == "RGB" and pixels.ndim == 3 and pixels.shape[-1] == 3:
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    if pixels.ndim != 2:
        raise ValueError("not a single-frame image")
    low, high = float(pixels.min()), float(pixels.max())
    grey = (pixels.astype(np.float32) - low) / max(high - low, 1e-6) * 255.0
    if photometric == "MONOCHROME1":
        grey = 255.0 - grey
    return Image.fromarray(np.rint(grey).astype(np.uint8), "L")
