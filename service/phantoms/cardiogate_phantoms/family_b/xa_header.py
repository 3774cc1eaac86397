"""The X-Ray Angiographic Image header of a family B cine (PS3.3 A.14).

Modules beyond those of ``_common.base_dataset``: Image Pixel, Contrast/Bolus (C.7.6.4), Cine
(C.7.6.5), Multi-frame (C.7.6.6), X-Ray Image (C.8.7.1), X-Ray Acquisition (C.8.7.2), XA
Positioner (C.8.7.5), and a VOI LUT window on some runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import XRayAngiographicImageStorage

from .._common import StudyInfo, base_dataset, ds_str, synthetic_uid
from .xa_imaging import Exposure
from .xa_projection import CArm

MANUFACTURER_B = "cardiogate-synthetic-b"
MODEL_NAME_B = "phantom-b-xa"


@dataclass(frozen=True)
class Timing:
    """Frame timing of a run: increments between frames (ms, the first 0)."""

    fps: float
    increments_ms: list[float]
    vector: bool  # Frame Time Vector rather than Frame Time

    @classmethod
    def random(cls, rng: np.random.Generator, fps: float, frames: int) -> Timing:
        """Nominal frame time; a Frame Time Vector (with pulse jitter) on about a third."""
        nominal = 1000.0 / fps
        if rng.random() < 0.35:
            steps = nominal + rng.uniform(-0.4, 0.4, size=max(frames - 1, 0))
            return cls(fps, [0.0, *(round(float(x), 2) for x in steps)], True)
        return cls(fps, [0.0] + [round(nominal, 2)] * (frames - 1), False)

    @property
    def times_s(self) -> list[float]:
        """Seconds from the first frame."""
        return [float(x) / 1000 for x in np.cumsum(self.increments_ms)]


def xa_dataset(
    seed: int,
    info: StudyInfo,
    *,
    carm: CArm,
    exposure: Exposure,
    timing: Timing,
    artery: str,
    rng: np.random.Generator,
) -> Dataset:
    """A dataset with every XA attribute but Pixel Data."""
    series_dt = info.study_datetime + dt.timedelta(minutes=int(rng.integers(20, 80)))
    series_uid = synthetic_uid(seed, "family-b", "xa", "series")
    ds = base_dataset(
        info,
        sop_class_uid=XRayAngiographicImageStorage,
        sop_instance_uid=synthetic_uid(seed, "family-b", "xa", "instance"),
        modality="XA",
        series_instance_uid=series_uid,
        series_number=int(rng.integers(2, 40)),
        series_datetime=series_dt,
    )
    ds.Manufacturer = MANUFACTURER_B
    ds.ManufacturerModelName = MODEL_NAME_B
    ds.SeriesDescription = f"SYNTHETIC Coronary {artery} (family B)"
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    _pixel_module(ds, carm, exposure, len(timing.increments_ms))
    _cine(ds, timing)
    _acquisition(ds, carm, exposure, rng)
    ds.ContrastBolusAgent = "SYNTHETIC IODINATED CONTRAST"
    ds.ContrastBolusRoute = "INTRA-ARTERIAL"
    ds.ContrastBolusVolume = ds_str(float(rng.uniform(5.0, 12.0)))
    ds.ContrastBolusIngredient = "IODINE"
    ds.ContrastBolusIngredientConcentration = ds_str(
        float(rng.choice([300.0, 320.0, 350.0, 370.0]))
    )
    return ds


def _pixel_module(ds: Dataset, carm: CArm, exposure: Exposure, frames: int) -> None:
    bits = exposure.bits_stored
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = carm.rows, carm.columns
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = frames
    ds.PixelIntensityRelationship = "LOG" if exposure.log_display else "DISP"
    if exposure.log_display:  # the Modality LUT is required with LOG (PS3.3 A.14.4)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.RescaleType = "US"
    if bits > 8:  # a suggested window, as most systems send with deeper data
        ds.WindowCenter = ds_str(exposure.max_value * (exposure.low + exposure.high) / 2)
        ds.WindowWidth = ds_str(exposure.max_value * (exposure.high - exposure.low) * 1.1)


def _cine(ds: Dataset, timing: Timing) -> None:
    """Cine and Multi-frame modules (PS3.3 C.7.6.5, C.7.6.6)."""
    if timing.vector:
        ds.FrameTimeVector = [ds_str(x) for x in timing.increments_ms]
        ds.FrameIncrementPointer = Tag("FrameTimeVector")
    else:
        ds.FrameTime = ds_str(1000.0 / timing.fps)
        ds.FrameIncrementPointer = Tag("FrameTime")
    ds.CineRate = round(timing.fps)
    ds.RecommendedDisplayFrameRate = round(timing.fps)
    ds.StartTrim = 1
    ds.StopTrim = len(timing.increments_ms)
    ds.PreferredPlaybackSequencing = 0


def _acquisition(ds: Dataset, carm: CArm, exposure: Exposure, rng: np.random.Generator) -> None:
    """X-Ray Acquisition and XA Positioner modules (PS3.3 C.8.7.2, C.8.7.5)."""
    ds.KVP = ds_str(round(float(rng.uniform(65.0, 100.0)), 1))
    ds.RadiationSetting = "GR"
    ds.RadiationMode = "PULSED"
    ds.XRayTubeCurrent = int(rng.integers(300, 900))
    ds.ExposureTime = int(rng.integers(4, 10))
    ds.AveragePulseWidth = ds_str(float(ds.ExposureTime))
    ds.Grid = "IN"
    ds.FocalSpots = ds_str(float(rng.choice([0.5, 0.6, 0.8])))
    ds.ImagerPixelSpacing = [ds_str(carm.pitch_mm)] * 2
    ds.FieldOfViewShape = "RECTANGLE"
    ds.FieldOfViewDimensions = [
        round(carm.pitch_mm * carm.rows),
        round(carm.pitch_mm * carm.columns),
    ]
    ds.DistanceSourceToDetector = ds_str(carm.sid_mm)
    ds.DistanceSourceToPatient = ds_str(carm.sod_mm)
    ds.EstimatedRadiographicMagnificationFactor = ds_str(round(carm.sid_mm / carm.sod_mm, 4))
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = ds_str(carm.primary_deg)
    ds.PositionerSecondaryAngle = ds_str(carm.secondary_deg)
    ds.TableMotion = "STATIC"
