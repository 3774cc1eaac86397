"""Coded concepts of cardiogate's reports: DICOM and SNOMED codes where they exist (see
``shared/reference/sr-and-scoring.md`` section 3), a local scheme where none does.

The calcium risk categories, the angiographic stenosis grade and the review flags have no
DICOM code, so they use the private coding scheme ``99CARDIO`` (PS3.16 8.2: a designator
starting with ``99`` is local), declared in each SR's Coding Scheme Identification Sequence.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

LOCAL_SCHEME = "99CARDIO"
LOCAL_SCHEME_ITEM = CodingSchemeIdentificationItem(
    designator=LOCAL_SCHEME,
    name="cardiogate local codes",
    responsible_organization="cardiogate",
)


def local(value: str, meaning: str) -> hd.sr.CodedConcept:
    """A concept of the local scheme (value at most 16 characters, meaning at most 64)."""
    if len(value) > 16 or len(meaning) > 64:
        raise ValueError(f"local code {value!r} is too long for SH/LO")
    return hd.sr.CodedConcept(value=value, scheme_designator=LOCAL_SCHEME, meaning=meaning)


# CID 3016 major coronary arteries (SCT), keyed as cardiogate.tasks.calcium.scoring.ARTERIES
ARTERY_SITES: dict[str, Code] = {
    "LM": codes.SCT.LeftMainCoronaryArtery,
    "LAD": codes.SCT.LeftAnteriorDescendingCoronaryArtery,
    "LCX": codes.SCT.CircumflexCoronaryArtery,
    "RCA": codes.SCT.RightCoronaryArtery,
}
CORONARY_ARTERY = codes.SCT.CoronaryArtery  # the whole tree, or a vessel not known
CALCIFIED_PLAQUE = codes.SCT.CalcifiedAtheromatousPlaque
ABNORMAL_STRUCTURE = codes.SCT.MorphologicallyAbnormalStructure

# TID 3905-style calcium measurements
CALCIUM_SCORE = codes.SCT.CoronaryArteryCalciumScore
AGATSTON_METHOD = codes.DCM.AgatstonScoringMethod
CALCIUM_VOLUME = codes.DCM.CalciumVolume
CALCIUM_MASS = codes.DCM.CalciumMass
NO_UNITS = codes.UCUM.NoUnits
CUBIC_MILLIMETRE = codes.UCUM.CubicMillimeter
PERCENT = codes.UCUM.Percent
MILLIGRAM = hd.sr.CodedConcept(value="mg", scheme_designator="UCUM", meaning="milligram")

# stenosis
STENOSIS = codes.SCT.Stenosis
DIAMETER_STENOSIS = codes.SCT.LumenDiameterStenosis
DIAMETER_METHOD = codes.DCM.DiameterBasedMethod
CERTAINTY = codes.DCM.CertaintyOfFinding
# QCA of a lesion (CID 3481 and 3483): the minimal lumen diameter is the vessel lumen
# diameter derived as the minimum; the reference diameter the same concept at the
# interpolated reference (named by its own local derivation); the stenotic lesion length
LUMEN_DIAMETER = codes.SCT.VesselLumenDiameter
MINIMUM = codes.SCT.Minimum
LESION_LENGTH = codes.SCT.StenoticLesionLength
MILLIMETRE = codes.UCUM.Millimeter
YES: Code = codes.SCT.Yes
NO: Code = codes.SCT.No

# Procedure reported (TID 1500 row 4, DCID 100 "Quantitative Diagnostic Imaging Procedure").
# Validators check it against the CID 100 of the PS3.16 edition they ship. SCT 77343006
# Angiography and LN 43468-8 XR unspecified body region joined CID 100 after 2019a: dcmtk's
# list (PS3.16 2019a) lacks both and PixelMed's validator rejects 77343006 (issue 16). So an
# angiogram reports SCT 363679005 Imaging procedure, in every edition of CID 100 (as SRT
# P0-0099A before SNOMED codes replaced SRT), and a CT LN 25045-6 CT unspecified body region.
# The cardiac procedure, from CID 3757 "Cardiac Diagnostic Procedure", which CID 100 does not
# include, goes in the SR header's Performed Procedure Code Sequence (PS3.3 C.17.2).
CT_PROCEDURE = codes.LN.CTUnspecifiedBodyRegion  # LN 25045-6, CID 100
XA_PROCEDURE = codes.SCT.ImagingProcedure  # SCT 363679005, CID 100
CT_PERFORMED = codes.SCT.CardiacCTForCalciumScoring  # SCT 426005005, CID 3757
XA_PERFORMED = codes.SCT.CardiacCatheterizationCoronaryAngiogram  # SCT 419416005, CID 3757
MODALITIES: dict[str, Code] = {  # CID 29, for the Image Library's descriptors
    "CT": codes.cid29.ComputedTomography,
    "XA": codes.cid29.XRayAngiography,
}

# a point that stands for a finding: an artery's or the tree's calcium (TID 1410 "Geometric
# purpose of region", CID 219)
REPRESENTATIVE_POINT = codes.DCM.RepresentativePoint  # DCM 128140
ABSENT = codes.SCT.Absent  # SCT 272519000: an artery without calcium

# report parts
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept(
    value="C0034375", scheme_designator="UMLS", meaning="Qualitative Evaluations"
)
COMMENT = codes.DCM.Comment

# local concepts
CLASSIC_CATEGORY = local("CACCLASSIC", "Coronary calcium category, classic Agatston bands")
CAC_DRS = local("CACDRS", "CAC-DRS category (Hecht et al. 2018)")
STENOSIS_GRADE = local("XAGRADE", "Stenosis grade: CAD-RADS bands on XA (a convention)")
SIGNIFICANT_STENOSIS = local("SIGSTEN", "Significant coronary stenosis found by the model")
NEEDS_REVIEW = local("REVIEW", "Needs review by a qualified reader")

# code value suffix of each classic band (">" is best kept out of a code value)
_CLASSIC_VALUES = {
    "0": "0",
    "1-10": "1-10",
    "11-100": "11-100",
    "101-400": "101-400",
    ">400": "GT400",
}


def classic_value(category: str) -> hd.sr.CodedConcept:
    """The local code of a classic category (``"0"``, ``"1-10"`` ... ``">400"``)."""
    if category not in _CLASSIC_VALUES:
        raise ValueError(f"unknown classic calcium category {category!r}")
    return local(f"CAC-{_CLASSIC_VALUES[category]}", f"Agatston {category}")


def cac_drs_value(category: str) -> hd.sr.CodedConcept:
    """The local code of a CAC-DRS category such as ``"A2/N3"``."""
    return local(f"CACDRS-{category}", f"CAC-DRS {category}")


REFERENCE_DIAMETER_DERIVATION = local("QCA-REF", "Interpolated reference (QCA)")


def grade_value(cad_rads: str, label: str) -> hd.sr.CodedConcept:
    """The local code of an angiographic grade: its CAD-RADS band and the band's label."""
    return local(f"XAGRADE-{cad_rads}", f"CAD-RADS {cad_rads} band, {label}")


def yes_no(value: bool) -> Code:
    """SCT Yes or No."""
    return YES if value else NO
