"""Synthetic cardiac CT series (CT Image Storage, one file per slice).

The pixels come from :func:`.phantom.make_cardiac_phantom` (chest, heart,
aorta, coronary tree with calcified plaques, label-0 distractors, blur and
noise); this module wraps them in DICOM with realistic headers and puts the
true per-artery Agatston score and calcium volume into the series truth.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydicom.uid import UID

from ._common import (
    SyntheticSeries,
    base_dataset,
    check_seed,
    ds_list,
    ds_str,
    set_pixel_data,
    study_info,
    synthetic_uid,
)
from .coronary import PlaqueSpec
from .phantom import make_cardiac_phantom

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_CT_STREAM = 0xC7
_KERNELS_CALCIUM = ("Qr36d", "B35f", "FC12", "STANDARD")
_KERNELS_CTA = ("Bv40d", "B26f", "FC43", "DETAIL")


def make_ct_series(
    seed: int,
    *,
    n_slices: int = 64,
    rows: int = 512,
    columns: int = 512,
    slice_thickness_mm: float = 3.0,
    pixel_spacing_mm: float | None = None,
    contrast: bool = False,
    study_instance_uid: str | None = None,
    plaques: Sequence[PlaqueSpec | Mapping[str, Any]] | None = None,
    aortic_calcium: bool | int | None = None,
    valve_calcium: bool | None = None,
    noise_sigma_hu: float | None = None,
    keep_phantom: bool = True,
) -> SyntheticSeries:
    """Generate a deterministic synthetic axial cardiac CT series.

    Parameters
    ----------
    seed : int
        Non-negative seed; identical seeds give identical output.
    n_slices, rows, columns : int
        Series geometry.
    slice_thickness_mm : float
        Slice thickness; also used as the slice increment.
    pixel_spacing_mm : float, optional
        In-plane spacing, respected as given; seed-varied in 0.35-0.70 mm when omitted.
    contrast : bool
        Produce a contrast-enhanced CTA instead of a calcium-score series.
    study_instance_uid : str, optional
        Override the seed-derived Study Instance UID.
    plaques : sequence of PlaqueSpec or mapping, optional
        Coronary plaques to place (seeded when omitted, ``[]`` for none).
    aortic_calcium, valve_calcium : bool or int, optional
        Label-0 distractors (seeded when omitted).
    noise_sigma_hu : float, optional
        Image noise (seeded 10-25 HU when omitted).
    keep_phantom : bool
        Attach the :class:`~.phantom.CardiacPhantom` (HU and label volumes) as
        ``SyntheticSeries.phantom``.

    Returns
    -------
    SyntheticSeries
        One CT Image Storage dataset per slice, the ground truth (including
        ``agatston``, ``volume_mm3``, ``lesion_count``, ``category``, ``cac_drs``
        and ``plaques``, computed on the stored integer HU) and the phantom.
    """
    check_seed(seed)
    if (
        min(n_slices, rows, columns) < 1
        or slice_thickness_mm <= 0
        or (pixel_spacing_mm is not None and pixel_spacing_mm <= 0)
    ):
        raise ValueError("sizes, slice thickness and pixel spacing must be positive")
    rng = np.random.default_rng([seed, _CT_STREAM])
    info = study_info(seed, study_instance_uid)
    signed, wide = (bool(v < 0.5) for v in rng.random(2))
    bits_stored = 16 if signed or wide else 12
    intercept = -1024.0
    ph = make_cardiac_phantom(
        seed,
        n_slices=n_slices,
        rows=rows,
        columns=columns,
        pixel_spacing_mm=pixel_spacing_mm,
        slice_increment_mm=slice_thickness_mm,
        contrast=contrast,
        plaques=plaques,
        aortic_calcium=aortic_calcium,
        valve_calcium=valve_calcium,
        noise_sigma_hu=noise_sigma_hu,
    )
    ps, inc, zs = ph.pixel_spacing_mm, ph.slice_increment_mm, ph.z_mm
    x0, y0 = ph.origin_mm
    kernel = str(rng.choice(_KERNELS_CTA if contrast else _KERNELS_CALCIUM))
    ma = int(rng.integers(80, 400))
    series_dt = info.study_datetime + dt.timedelta(minutes=int(rng.integers(3, 20)))
    series_uid = synthetic_uid(seed, "ct", "series", str(contrast))
    frame_uid = synthetic_uid(seed, "ct", "frame-of-reference")
    dtype = np.int16 if signed else np.uint16
    lo, hi = int(np.iinfo(dtype).min), 2 ** (bits_stored - int(signed)) - 1

    desc = f"{'CTA Coronary' if contrast else 'Calcium Score'} {slice_thickness_mm:.1f}mm"
    tpl = base_dataset(
        info,
        sop_class_uid=CT_IMAGE_STORAGE,
        sop_instance_uid="1.2",
        modality="CT",
        series_instance_uid=series_uid,
        series_number=3 if contrast else 2,
        series_datetime=series_dt,
    )
    tpl.SeriesDescription = desc
    tpl.ProtocolName = "Coronary CTA" if contrast else "Cardiac Calcium Score"
    tpl.PatientPosition = "FFS"
    tpl.FrameOfReferenceUID = frame_uid
    tpl.PositionReferenceIndicator = ""
    tpl.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    tpl.AcquisitionNumber = 1
    tpl.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    tpl.PixelSpacing = ds_list([ps, ps])
    tpl.SliceThickness = ds_str(slice_thickness_mm)
    tpl.SamplesPerPixel = 1
    tpl.PhotometricInterpretation = "MONOCHROME2"
    tpl.Rows, tpl.Columns = rows, columns
    tpl.BitsAllocated, tpl.BitsStored, tpl.HighBit = 16, bits_stored, bits_stored - 1
    tpl.PixelRepresentation = 1 if signed else 0
    tpl.RescaleIntercept = ds_str(intercept)
    tpl.RescaleSlope = "1"
    tpl.RescaleType = "HU"
    tpl.WindowCenter = "300" if contrast else "40"
    tpl.WindowWidth = "800" if contrast else "400"
    tpl.WindowCenterWidthExplanation = "CTA" if contrast else "MEDIASTINUM"
    tpl.KVP = "120"
    tpl.XRayTubeCurrent = ma
    tpl.ExposureTime = 280
    tpl.ConvolutionKernel = kernel
    tpl.ReconstructionDiameter = ds_str(ps * columns)
    tpl.GantryDetectorTilt = "0"
    tpl.RotationDirection = "CW"
    if contrast:
        tpl.ContrastBolusAgent = "Iohexol 350 mg/mL (synthetic)"
        tpl.ContrastBolusRoute = "IV"
        tpl.ContrastBolusVolume = "70"
    datasets = []
    for i, z in enumerate(zs):
        ds = copy.deepcopy(tpl)
        uid = synthetic_uid(seed, "ct", series_uid, str(i))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = ds_list([x0, y0, float(z)])
        ds.SliceLocation = ds_str(float(z))
        stored = np.clip(ph.hu[i] - np.float32(intercept), lo, hi).astype(dtype)
        set_pixel_data(ds, stored)
        datasets.append(ds)

    plaques_truth = [
        {**p, "instance_numbers": [k + 1 for k in p.get("slices", [])]} for p in ph.plaques
    ]
    truth: dict[str, Any] = {
        "seed": seed,
        "modality": "CT",
        "sop_class_uid": CT_IMAGE_STORAGE,
        "study_instance_uid": info.study_instance_uid,
        "series_instance_uid": series_uid,
        "frame_of_reference_uid": frame_uid,
        "number_of_instances": n_slices,
        "rows": rows,
        "columns": columns,
        "pixel_spacing_mm": ps,
        "slice_thickness_mm": float(slice_thickness_mm),
        "slice_increment_mm": inc,
        "first_slice_z_mm": float(zs[0]),
        "z_step_mm": -inc,
        "contrast": contrast,
        "pixel_representation": 1 if signed else 0,
        "bits_stored": bits_stored,
        "rescale_intercept": intercept,
        "rescale_slope": 1.0,
        "phantom_units": "mm, patient LPS coordinates; HU",
        "phantom": ph.anatomy,
        **ph.truth(),
        "plaques": plaques_truth,
    }
    return SyntheticSeries(datasets=datasets, truth=truth, phantom=ph if keep_phantom else None)
