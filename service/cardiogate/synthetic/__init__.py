"""Deterministic synthetic DICOM series for tests and demos.

All patient data is fake (``SYNTHETIC^PHANTOM^<seed>``).
"""

from ._common import SyntheticSeries, write_series
from .ct import make_ct_series
from .xa import make_xa_cine

__all__ = ["SyntheticSeries", "make_ct_series", "make_xa_cine", "write_series"]
