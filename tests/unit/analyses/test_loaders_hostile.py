"""Property tests of the analyses' loaders on hostile files: spoiled Part 10 files of small
synthetic CT series and XA cines. A loader returns a volume that makes sense or raises a
CardiogateError with a reason; never IndexError, ValueError, MemoryError and the like,
which would fail the job as an internal error instead of telling the operator why."""

from __future__ import annotations

import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import UID

from cardiogate.analyses.ct_volume import CTVolume, load_ct_series
from cardiogate.analyses.xa_cine import XACine, XACineError, load_xa_cine
from cardiogate.errors import CardiogateError
from hostile import (
    HOSTILE_ELEMENTS,
    HOSTILE_NUMBERS,
    SYNTAXES,
    US_VALUES,
    ct_slices,
    mutate,
    part10,
    rle_variant,
    xa_cine,
)

HOSTILE = settings(max_examples=150, deadline=None, derandomize=True)

syntax = st.sampled_from(SYNTAXES)
element = st.sampled_from(HOSTILE_ELEMENTS).flatmap(
    lambda kv: st.tuples(
        st.just(kv[0]),
        st.just(kv[1]),
        st.sampled_from(US_VALUES) if kv[1] in ("US", "AT") else st.sampled_from(HOSTILE_NUMBERS),
    )
)
edits = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 2**31), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=3,
)


@pytest.fixture(autouse=True, scope="module")
def memory_ceiling() -> Iterator[None]:
    """A header that asks for gigabytes makes MemoryError here, not a swapping machine."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 2 * 2**30, hard))
    yield
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


PIXEL_CUTS = (None, 0, 1, 2, 100, 511)  # bytes of pixel data kept; None: as encoded


def _check_ct(volume: CTVolume, n: int) -> None:
    assert volume.hu.shape[0] == n
    assert np.isfinite(volume.slice_increment_mm)
    assert volume.slice_increment_mm > 0
    assert all(np.isfinite(s) and s > 0 for s in volume.pixel_spacing_mm)


def _check_xa(cine: XACine) -> None:
    assert cine.frames.ndim == 3
    assert 0 not in cine.frames.shape
    assert len(cine.frame_sources) == cine.n_frames


def _load(kind: str, blobs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"{i}.dcm" for i in range(len(blobs))]
        for path, blob in zip(paths, blobs, strict=True):
            path.write_bytes(blob)
        try:
            if kind == "ct":
                _check_ct(load_ct_series(paths), len(paths))
            else:
                _check_xa(load_xa_cine(paths))
        except CardiogateError:
            pass  # refused with a reason


@HOSTILE
@given(
    kind=st.sampled_from(["ct", "xa"]),
    ts=syntax,
    compressed=st.booleans(),
    every_slice=st.booleans(),
    values=st.lists(element, min_size=1, max_size=3),
    pixel_cut=st.sampled_from(PIXEL_CUTS),
)
def test_hostile_values_load_or_are_refused_with_a_reason(
    kind: str,
    ts: UID,
    compressed: bool,
    every_slice: bool,
    values: list[tuple[str, str, str | int]],
    pixel_cut: int | None,
) -> None:
    originals = ct_slices() if kind == "ct" else [xa_cine()]
    datasets = [rle_variant(ds) if compressed else ds for ds in originals]
    hit = len(datasets) if every_slice else 1
    for ds in datasets[:hit]:
        if pixel_cut is not None and not compressed:
            ds.PixelData = ds.PixelData[:pixel_cut]
    used = datasets[0].file_meta.TransferSyntaxUID if compressed else ts
    blobs = [part10(ds, used, values if i < hit else ()) for i, ds in enumerate(datasets)]
    _load(kind, blobs)


@HOSTILE
@given(kind=st.sampled_from(["ct", "xa"]), ts=syntax, compressed=st.booleans(), ops=edits)
def test_spoiled_files_load_or_are_refused_with_a_reason(
    kind: str, ts: UID, compressed: bool, ops: list[tuple[int, int, int]]
) -> None:
    originals = ct_slices() if kind == "ct" else [xa_cine()]
    datasets = [rle_variant(ds) if compressed else ds for ds in originals]
    blobs = [part10(ds, ds.file_meta.TransferSyntaxUID if compressed else ts) for ds in datasets]
    blobs[0] = mutate(blobs[0], ops)
    _load(kind, blobs)


def test_a_multi_valued_samples_per_pixel_is_refused(tmp_path: Path) -> None:
    """Found by make fuzz: a US element with two values reached int() as a list."""
    ds = xa_cine()
    ds.SamplesPerPixel = [1, 1]
    path = tmp_path / "xa.dcm"
    path.write_bytes(part10(ds, ds.file_meta.TransferSyntaxUID))
    with pytest.raises(XACineError, match="SamplesPerPixel"):
        load_xa_cine([path])
