"""Load an X-ray angiography cine into float32 frames with timing and projection geometry.

Three encodings of one cine are read (PS3.3 A.14, A.47):

- one multi-frame X-Ray Angiographic Image instance (Number of Frames > 1);
- many single-frame XA instances, ordered by Instance Number, then Acquisition Time, then
  Content Time;
- one Enhanced XA instance, whose timing, angles and pixel spacing come from the per-frame
  or shared functional groups (PS3.3 C.7.6.16, C.8.19.6).

Instances that are not one cine (several series, several multi-frame runs, mixed matrix
sizes or bit depths, not XA) are refused with :class:`XACineError`. Compressed transfer
syntaxes are decoded by pydicom's pixel handlers (pylibjpeg, pyjpegls). MONOCHROME1 frames
are inverted so that vessels are dark on bright, as in MONOCHROME2.

Frame times (ms from the first frame), first source that is usable: Frame Time Vector
(0018,1065) or Frame Time (0018,1063), in the order Frame Increment Pointer (0028,0009)
names them; the Enhanced XA Frame Reference DateTime (0018,9151) of each frame; the
Acquisition/Content Time of single-frame instances when they are all distinct; Cine Rate
(0018,0040), Recommended Display Frame Rate (0008,2144) or its Enhanced XA float (0008,9459).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.utils import iter_pixels
from pydicom.tag import BaseTag, Tag
from pydicom.uid import EnhancedXAImageStorage, XRayAngiographicImageStorage
from pydicom.valuerep import DT, TM

from cardiogate.analyses.pixels import (
    MAX_VOXELS,
    check_image,
    convert_header,
    decoding,
    framed,
    header_int,
    read_file,
)
from cardiogate.analyses.xa_frames import FrameScores, score_frames, select_frames
from cardiogate.analyses.xa_geometry import XAGeometry, frame_value, read_geometry
from cardiogate.errors import CardiogateError

__all__ = [
    "FrameScores",
    "XACine",
    "XACineError",
    "load_xa_cine",
    "score_frames",
    "select_frames",
]

_FRAME_CONTENT = "FrameContentSequence"
_FRAME_VOI_LUT = "FrameVOILUTSequence"
_FRAME_TIME = Tag("FrameTime")
_FRAME_TIME_VECTOR = Tag("FrameTimeVector")

Frames = np.ndarray[Any, np.dtype[np.float32]]
Times = np.ndarray[Any, np.dtype[np.float64]]


class XACineError(CardiogateError):
    """The instances do not make one decodable angiography cine; the message says why."""


@dataclass(frozen=True)
class XACine:
    """One angiographic run as (frames, rows, columns) float32, vessels dark on bright."""

    frames: Frames
    frame_times_ms: Times | None  # from frame 0; None: unknown
    timing_source: str | None  # the attribute the times come from
    geometry: XAGeometry
    bits_stored: int
    photometric_interpretation: str  # as received; MONOCHROME1 frames have been inverted
    window: tuple[float, float] | None  # (center, width) of the first frame, in frames' polarity
    series_instance_uid: str
    sop_class_uid: str
    frame_sources: list[tuple[str, int]]  # per frame: (SOPInstanceUID, 1-based frame number)

    @property
    def n_frames(self) -> int:
        """Number of frames in the cine."""
        return int(self.frames.shape[0])

    @property
    def mm_per_px(self) -> float | None:
        """Pixel size at the isocentre in mm; None when the geometry does not give it."""
        return self.geometry.mm_per_px

    @property
    def geometry_flags(self) -> list[str]:
        """What was missing or doubtful in the geometry; empty when all was there."""
        return self.geometry.flags

    @property
    def projection(self) -> str | None:
        """The view, e.g. ``"LAO 45 CRA 20"``; None without positioner angles."""
        return self.geometry.projection


def load_xa_cine(sources: Iterable[Path | Dataset]) -> XACine:
    """Read, check, order and decode one XA cine (files or datasets).

    Parameters
    ----------
    sources : iterable of Path or Dataset
        One multi-frame XA or Enhanced XA instance, or the single-frame XA instances of
        one run, in any order.

    Returns
    -------
    XACine
        Frames, times, geometry and where each frame came from.

    Raises
    ------
    XACineError
        When the instances are not one cine or their pixel data cannot be decoded.
        Missing timing or geometry never raises: those fields are None and flagged.
    """
    datasets = [_read(source, index) for index, source in enumerate(sources)]
    if not datasets:
        raise XACineError("no instances given")
    uids = [str(ds.get("SOPInstanceUID", "?"))[:64] for ds in datasets]
    for ds, uid in zip(datasets, uids, strict=True):
        convert_header(ds, uid, XACineError)
    _check_one_cine(datasets, uids)
    multi = [i for i, ds in enumerate(datasets) if _n_frames(ds) > 1 or _is_enhanced(ds)]
    if multi and len(datasets) > 1:
        raise XACineError(
            f"{len(datasets)} instances given and {len(multi)} of them multi-frame: "
            "a cine is one multi-frame instance or several single-frame instances"
        )
    if not multi:
        order = sorted(range(len(datasets)), key=lambda i: _instance_key(datasets[i], i))
        datasets, uids = [datasets[i] for i in order], [uids[i] for i in order]
    sources_per_frame = [(ds, k) for ds in datasets for k in range(_n_frames(ds))]

    first = datasets[0]
    bits_stored = int(first.get("BitsStored", first.get("BitsAllocated", 16)))
    low, high = _stored_range(first, bits_stored)
    photometric = str(first.get("PhotometricInterpretation", "MONOCHROME2"))
    rows, columns = (int(first.Rows), int(first.Columns))  # checked by _check_one_cine
    if len(sources_per_frame) * rows * columns > MAX_VOXELS:
        raise XACineError(f"{len(sources_per_frame)} frames are more than one cine can hold")
    frames = np.empty((len(sources_per_frame), rows, columns), np.float32)
    start = 0
    for ds, uid in zip(datasets, uids, strict=True):
        out = frames[start : start + _n_frames(ds)]
        _decode_into(ds, uid, out)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            np.subtract(np.float32(low + high), out, out=out)
        start += len(out)

    times, timing_source = _frame_times(datasets, sources_per_frame)
    return XACine(
        frames=frames,
        frame_times_ms=times,
        timing_source=timing_source,
        geometry=read_geometry(sources_per_frame),
        bits_stored=bits_stored,
        photometric_interpretation=photometric,
        window=_window(first, photometric == "MONOCHROME1", low + high),
        series_instance_uid=str(first.get("SeriesInstanceUID", "")),
        sop_class_uid=str(first.SOPClassUID),
        frame_sources=[(str(ds.SOPInstanceUID), k + 1) for ds, k in sources_per_frame],
    )


def _read(source: Path | Dataset, index: int) -> Dataset:
    return read_file(source, index, XACineError)


def _is_enhanced(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) == EnhancedXAImageStorage


def _n_frames(ds: Dataset) -> int:
    if ds.get("NumberOfFrames") in (None, ""):
        return 1
    uid = str(ds.get("SOPInstanceUID", "?"))[:64]
    return max(1, header_int(ds, "NumberOfFrames", uid, XACineError))


def _int(ds: Dataset, keyword: str, default: int, uid: str) -> int:
    """An integer attribute that may be absent; a multi-valued or malformed one is refused."""
    if ds.get(keyword) in (None, ""):
        return default
    return header_int(ds, keyword, uid, XACineError)


def _check_one_cine(datasets: list[Dataset], uids: list[str]) -> None:
    for ds, uid in zip(datasets, uids, strict=True):
        sop_class = str(ds.get("SOPClassUID", ""))
        if sop_class not in (XRayAngiographicImageStorage, EnhancedXAImageStorage):
            raise XACineError(
                f"instance {uid} has SOP class {sop_class or 'none'}, not (Enhanced) XA Image"
            )
        if _int(ds, "SamplesPerPixel", 1, uid) != 1 or str(
            ds.get("PhotometricInterpretation", "MONOCHROME2")
        ) not in ("MONOCHROME1", "MONOCHROME2"):
            raise XACineError(f"instance {uid} is not a greyscale image")
        if "Rows" not in ds or "Columns" not in ds or "PixelData" not in ds:
            raise XACineError(f"instance {uid} has no image (Rows, Columns or PixelData)")
        check_image(ds, _n_frames(ds), uid, XACineError)
    series = sorted({str(ds.get("SeriesInstanceUID", "")) for ds in datasets})
    if len(series) > 1:
        raise XACineError(f"instances from {len(series)} series: {', '.join(series)}")
    shapes = sorted({(int(ds.Rows), int(ds.Columns)) for ds in datasets})
    if len(shapes) > 1:
        raise XACineError(f"mixed matrix sizes within the cine: {shapes}")
    depths = sorted({_int(ds, "BitsStored", 0, u) for ds, u in zip(datasets, uids, strict=True)})
    signs = {_int(ds, "PixelRepresentation", 0, u) for ds, u in zip(datasets, uids, strict=True)}
    if len(depths) > 1 or len(signs) > 1:
        raise XACineError(f"mixed BitsStored or PixelRepresentation within the cine: {depths}")


def _seconds(value: Any) -> float | None:
    """Seconds since midnight of a TM, or None when absent or malformed."""
    if value in (None, ""):
        return None
    try:
        t = TM(str(value))
    except ValueError:
        return None
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _instance_key(ds: Dataset, index: int) -> tuple[float, float, float, int]:
    number = ds.get("InstanceNumber")
    acquisition = _seconds(ds.get("AcquisitionTime"))
    content = _seconds(ds.get("ContentTime"))
    return (
        float(number) if number not in (None, "") else math.inf,
        acquisition if acquisition is not None else math.inf,
        content if content is not None else math.inf,
        index,
    )


def _stored_range(ds: Dataset, bits_stored: int) -> tuple[int, int]:
    """Smallest and largest stored value (PS3.5 8.1.1), for the MONOCHROME1 inversion."""
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    return 0, 2**bits_stored - 1


def _decode_into(ds: Dataset, uid: str, out: Frames) -> None:
    """Decode frame by frame into *out*, so that no second copy of the cine is held.

    Encapsulated frames are found by :func:`~cardiogate.analyses.pixels.framed`, whatever
    the sender's fragmentation and offset tables.
    """
    decoded = 0
    with decoding(ds, uid, XACineError):
        for frame in iter_pixels(framed(ds, len(out), uid, XACineError)):
            if frame.shape != out.shape[1:]:
                raise XACineError(f"instance {uid} decodes to frames of {frame.shape}")
            if decoded < len(out):
                out[decoded] = frame
            decoded += 1
    if decoded != len(out):
        raise XACineError(
            f"instance {uid} decodes to {decoded} frames, NumberOfFrames says {len(out)}"
        )


def _window(ds: Dataset, inverted: bool, low_plus_high: int) -> tuple[float, float] | None:
    center = frame_value(ds, 0, _FRAME_VOI_LUT, "WindowCenter")
    width = frame_value(ds, 0, _FRAME_VOI_LUT, "WindowWidth")
    if center is None or width is None:
        return None
    try:
        c = float(center[0] if isinstance(center, MultiValue) else center)
        w = float(width[0] if isinstance(width, MultiValue) else width)
    except (TypeError, ValueError):
        return None
    return (low_plus_high - c if inverted else c, w)


def _frame_times(
    datasets: list[Dataset], frames: Sequence[tuple[Dataset, int]]
) -> tuple[Times | None, str | None]:
    n = len(frames)
    first = datasets[0]
    if n == 1:
        return np.zeros(1), "single frame"
    cine_sources = [_FRAME_TIME_VECTOR, _FRAME_TIME]
    pointer = first.get("FrameIncrementPointer")
    pointers = list(pointer) if isinstance(pointer, MultiValue) else [pointer]
    if _FRAME_TIME in pointers:
        cine_sources.reverse()
    if len(datasets) == 1:
        per_frame = _per_frame_datetimes(first, n)
        if per_frame is not None and _is_enhanced(first):
            return per_frame
        for tag in cine_sources:
            times = _cine_module_times(first, tag, n)
            if times is not None:
                return times, "FrameTimeVector" if tag == _FRAME_TIME_VECTOR else "FrameTime"
        if per_frame is not None:
            return per_frame
    else:
        for keyword in ("AcquisitionTime", "ContentTime"):
            seconds = [_seconds(ds.get(keyword)) for ds in datasets]
            if all(s is not None for s in seconds):
                steps = np.diff(np.asarray(seconds, dtype=np.float64))
                if np.all(steps > 0):
                    return np.concatenate([[0.0], np.cumsum(steps)]) * 1000.0, keyword
    return _rate_times(first, n)


def _cine_module_times(ds: Dataset, tag: BaseTag, n: int) -> Times | None:
    """Frame Time or Frame Time Vector (PS3.3 C.7.6.5.1.2: increments, the first is 0)."""
    value = ds.get(tag)
    if value is None or value.value in (None, ""):
        return None
    raw = value.value
    try:
        numbers = [float(v) for v in (raw if isinstance(raw, MultiValue) else [raw])]
    except (TypeError, ValueError):
        return None
    if tag == _FRAME_TIME:
        if len(numbers) != 1 or not 0 < numbers[0] < math.inf:
            return None
        return np.arange(n, dtype=np.float64) * numbers[0]
    if len(numbers) != n or not all(0 <= v < math.inf for v in numbers[1:]):
        return None
    times: Times = np.cumsum(np.asarray(numbers[1:], dtype=np.float64))
    return np.concatenate([np.zeros(1), times])


def _per_frame_datetimes(ds: Dataset, n: int) -> tuple[Times, str] | None:
    """Enhanced XA: Frame Reference (or Acquisition) DateTime of each frame (C.7.6.16.2.2)."""
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return None
    for keyword in ("FrameReferenceDateTime", "FrameAcquisitionDateTime"):
        stamps: list[dt.datetime] = []
        for k in range(n):
            value = frame_value(ds, k, _FRAME_CONTENT, keyword)
            try:
                stamps.append(DT(str(value)))
            except (TypeError, ValueError):
                break
        if len(stamps) == n:
            seconds = np.asarray([(s - stamps[0]).total_seconds() for s in stamps])
            if np.all(np.diff(seconds) > 0):
                return seconds * 1000.0, keyword
    return None


def _rate_times(ds: Dataset, n: int) -> tuple[Times | None, str | None]:
    display = ds.get("FrameDisplaySequence")
    candidates = [
        ("CineRate", ds.get("CineRate")),
        ("RecommendedDisplayFrameRate", ds.get("RecommendedDisplayFrameRate")),
        (
            "RecommendedDisplayFrameRateInFloat",
            display[0].get("RecommendedDisplayFrameRateInFloat") if display else None,
        ),
    ]
    for keyword, value in candidates:
        try:
            rate = float(value) if value not in (None, "") else 0.0
        except (TypeError, ValueError):
            continue
        if 0 < rate < math.inf:
            return np.arange(n, dtype=np.float64) * (1000.0 / rate), keyword
    return None, None
