"""Deterministic synthetic DICOM series for tests, demos and model training.

All patient data is fake (``SYNTHETIC^PHANTOM^<seed>``).  :func:`make_cardiac_phantom`
gives a seeded cardiac CT volume with per-artery coronary calcium labels;
:func:`make_ct_series` wraps it in DICOM with the true Agatston scores in its truth.
"""

from ._common import SyntheticSeries, write_series
from .coronary import ARTERY_IDS, PlaqueSpec
from .ct import make_ct_series
from .phantom import CardiacPhantom, make_cardiac_phantom
from .xa import make_xa_cine

__all__ = [
    "ARTERY_IDS",
    "CardiacPhantom",
    "PlaqueSpec",
    "SyntheticSeries",
    "make_cardiac_phantom",
    "make_ct_series",
    "make_xa_cine",
    "write_series",
]
