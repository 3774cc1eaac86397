"""cardiogate's phantoms: deterministic synthetic DICOM series for tests, demos and model
training, a distribution of their own (``cardiogate-phantoms``) that the service runs
without and that imports nothing of it.

All patient data is fake (``SYNTHETIC^PHANTOM^<seed>``).  :func:`make_cardiac_phantom`
gives a seeded cardiac CT volume with per-artery coronary calcium labels;
:func:`make_ct_series` wraps it in DICOM with the true Agatston scores in its truth,
computed by the phantoms' own :func:`calcium_truth` from the published rules.
:func:`make_xa_cine` writes a coronary angiography cine with stenoses (seeded or
given as :class:`StenosisSpec`) and their per-frame positions in its truth;
:func:`curriculum_sample` draws training images for the stenosis model with the
same image model, normalised like a frame by :func:`normalise_xa_frame`.
"""

from ._common import SyntheticSeries, write_series
from .calcium_truth import CalciumTruth, TruthLesion, cac_drs, calcium_truth, classic_category
from .coronary import ARTERY_IDS, PlaqueSpec
from .ct import make_ct_series
from .curriculum import LEVELS, CurriculumLesion, CurriculumSample, curriculum_sample
from .phantom import CardiacPhantom, make_cardiac_phantom
from .xa import make_xa_cine
from .xa_image import normalise_xa_frame
from .xa_tree import SIGNIFICANT_PERCENT, StenosisSpec
from .xa_views import LCA_VESSELS, RCA_VESSELS

__all__ = [
    "ARTERY_IDS",
    "LCA_VESSELS",
    "LEVELS",
    "RCA_VESSELS",
    "SIGNIFICANT_PERCENT",
    "CalciumTruth",
    "CardiacPhantom",
    "CurriculumLesion",
    "CurriculumSample",
    "PlaqueSpec",
    "StenosisSpec",
    "SyntheticSeries",
    "TruthLesion",
    "cac_drs",
    "calcium_truth",
    "classic_category",
    "curriculum_sample",
    "make_cardiac_phantom",
    "make_ct_series",
    "make_xa_cine",
    "normalise_xa_frame",
    "write_series",
]
