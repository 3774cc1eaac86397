"""Phantom family B: a second, independently written generator of each modality.

Family A trained cardiogate's models; family B, written apart from it (it shares only the
DICOM helpers of ``cardiogate_phantoms._common``), tests whether they learned the anatomy
rather than their generator.  All patient data is fake.

CT: :func:`make_ct_phantom_b` renders a seeded non-contrast calcium-scoring scan
(:class:`CTPhantomB`, attributes named as family A's ``CardiacPhantom``) with per-artery
coronary calcium labels, a map of non-coronary bright objects (:data:`NONCORONARY_KINDS`)
and the Agatston truth; :func:`make_ct_series_b` wraps it in CT Image Storage DICOM.

XA: :func:`make_xa_cine_b` projects a 3D coronary tree on a beating epicardium through a
perspective C-arm (Beer-Lambert contrast, scatter, quantum and electronic noise, ribs,
spine, diaphragm, catheters, wires, stents, leads) into one multi-frame cine whose truth
has family A's keys (lesions with per-frame positions, vessels, opacification) plus the
``difficulty`` of the image.
"""

from .ct import CTPhantomB, make_ct_phantom_b
from .ct_noncoronary import NONCORONARY_KINDS
from .ct_series import make_ct_series_b
from .ct_truth import CalciumTruthB, LesionB
from .xa import make_xa_cine_b
from .xa_tree3d import LCA_VESSELS, RCA_VESSELS, VESSEL_NAMES

__all__ = [
    "LCA_VESSELS",
    "NONCORONARY_KINDS",
    "RCA_VESSELS",
    "VESSEL_NAMES",
    "CTPhantomB",
    "CalciumTruthB",
    "LesionB",
    "make_ct_phantom_b",
    "make_ct_series_b",
    "make_xa_cine_b",
]
