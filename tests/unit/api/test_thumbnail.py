"""Key-image thumbnails: any single-frame image becomes a small PNG; a broken file is a
KeyImageError (the page answers 404), never a crash."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from cardiogate_phantoms import make_ct_series
from PIL import Image

from cardiogate.api.thumbnail import KeyImageError, thumbnail_png


def test_a_greyscale_slice_becomes_a_png_at_most_256_px(tmp_path: Path) -> None:
    ds = make_ct_series(3, n_slices=1, rows=512, columns=384).datasets[0]
    path = tmp_path / "slice.dcm"
    ds.save_as(path, enforce_file_format=True)

    image = Image.open(io.BytesIO(thumbnail_png(path)))
    assert image.format == "PNG"
    assert image.mode == "L"
    assert image.size == (192, 256)  # the aspect ratio kept
    pixels = np.asarray(image)
    assert pixels.min() == 0
    assert pixels.max() == 255  # the slice's full range, windowed to 8 bits


@pytest.mark.parametrize("content", [b"", b"not DICOM at all" * 100])
def test_a_broken_file_is_a_key_image_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(content)
    with pytest.raises(KeyImageError, match="cannot be rendered"):
        thumbnail_png(path)


def test_a_missing_file_is_a_key_image_error(tmp_path: Path) -> None:
    with pytest.raises(KeyImageError, match=r"\(FileNotFoundError\)"):
        thumbnail_png(tmp_path / "gone.dcm")
