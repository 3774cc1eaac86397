"""Coronary vessels and segments: from a vessel and a place along it to the SCCT/AHA segment,
its number and the SNOMED CT code DICOM uses for it (CID 3014 "Coronary Artery Segments").

The segment model is the SCCT's (Leipsic et al., J Cardiovasc Comput Tomogr 2014, 18
segments, after AHA 1975): segment boundaries are branch origins (the first septal or
diagonal ends the proximal LAD, the first obtuse marginal the proximal LCX) and fractions
of a vessel's course (the mid LAD ends half way to the apex, the proximal RCA half way to
the acute margin). An angiogram read by a model gives the vessel and the fraction of its
length from its origin, not the branch origins, so the boundaries here are fractions at
the typical branch positions (those of the phantom trees, ``cardiogate_phantoms.xa_views``):
an approximation a reader confirms on the image. There is no code for the segment numbers
themselves (``shared/reference/viewers-and-codes.md`` section 2), so the number goes in the
text and the segment's anatomical code is the finding site.

Branches without a SCCT number (third diagonal and marginal, second septal, conus,
acute marginals) keep their name and the nearest CID 3014 code, or the parent artery's.
"""

from __future__ import annotations

from dataclasses import dataclass

# The main artery (CID 3016) each vessel belongs to; LM is its own.
TERRITORY: dict[str, str] = {
    "LM": "LM",
    "LAD": "LAD",
    "D1": "LAD",
    "D2": "LAD",
    "D3": "LAD",
    "S1": "LAD",
    "S2": "LAD",
    "LCX": "LCX",
    "OM1": "LCX",
    "OM2": "LCX",
    "OM3": "LCX",
    "RCA": "RCA",
    "CB": "RCA",
    "AM1": "RCA",
    "AM2": "RCA",
    "PDA": "RCA",
}


VESSEL_NOT_NAMED = "vessel not named"  # a lesion of a model that does not identify vessels


def site_label(segment: str | None, scct: int | None, *, brief: bool = False) -> str:
    """How a lesion's place reads everywhere it is shown: ``"mid LAD (segment 7)"``
    (``brief``: ``"mid LAD (7)"``), the branch's name alone when the SCCT model does not
    number it, or :data:`VESSEL_NOT_NAMED`."""
    if segment is None:
        return VESSEL_NOT_NAMED
    if scct is None:
        return segment
    return f"{segment} ({scct})" if brief else f"{segment} (segment {scct})"


@dataclass(frozen=True)
class Segment:
    """A coronary segment: its short and long names, SCCT number and SNOMED CT code."""

    short: str  # "mLAD"
    name: str  # "mid LAD"
    scct: int | None  # 7; None for a branch the SCCT model does not number
    code: str  # SNOMED CT concept id, "91748002"
    meaning: str  # its CID 3014 meaning, "Mid Left Anterior Descending Coronary Artery"

    @property
    def label(self) -> str:
        """``"mid LAD (segment 7)"``, or the name alone without a SCCT number."""
        return site_label(self.name, self.scct)


LM = Segment("LM", "left main", 5, "3227004", "Left Main Coronary Artery")
PLAD = Segment(
    "pLAD", "proximal LAD", 6, "68787002", "Proximal Left Anterior Descending Coronary Artery"
)
MLAD = Segment("mLAD", "mid LAD", 7, "91748002", "Mid Left Anterior Descending Coronary Artery")
DLAD = Segment(
    "dLAD", "distal LAD", 8, "36672000", "Distal Left Anterior Descending Coronary Artery"
)
PLCX = Segment("pLCX", "proximal LCX", 11, "52433000", "Proximal Circumflex Coronary Artery")
DLCX = Segment("dLCX", "distal LCX", 13, "6511003", "Distal Circumflex Coronary Artery")
PRCA = Segment("pRCA", "proximal RCA", 1, "91083009", "Proximal Right Coronary Artery")
MRCA = Segment("mRCA", "mid RCA", 2, "450960006", "Mid Right Coronary Artery")
DRCA = Segment("dRCA", "distal RCA", 3, "41879009", "Distal Right Coronary Artery")
RPLB = Segment(
    "R-PLB",
    "right posterolateral branch",
    16,
    "91761002",
    "1st Right posterolateral Coronary Artery",
)

BRANCHES: dict[str, Segment] = {
    "D1": Segment("D1", "first diagonal", 9, "91750005", "1st Diagonal Coronary Artery"),
    "D2": Segment("D2", "second diagonal", 10, "91751009", "2nd Diagonal Coronary Artery"),
    "D3": Segment("D3", "third diagonal", None, "91752002", "3rd diagonal Coronary Artery"),
    "S1": Segment("S1", "first septal", None, "244251006", "1st Septal Coronary Artery"),
    "S2": Segment(
        "S2",
        "second septal of the LAD",
        None,
        "59438005",
        "Left Anterior Descending Coronary Artery",
    ),
    "OM1": Segment("OM1", "first obtuse marginal", 12, "91754001", "1st Marginal Coronary Artery"),
    "OM2": Segment("OM2", "second obtuse marginal", 14, "91755000", "2nd Marginal Coronary Artery"),
    "OM3": Segment(
        "OM3", "third obtuse marginal", None, "91756004", "3rd Marginal Coronary Artery"
    ),
    "PDA": Segment(
        "R-PDA",
        "right posterior descending",
        4,
        "53655008",
        "Posterior Descending Right Coronary Artery",
    ),
    "CB": Segment("CB", "conus branch of the RCA", None, "13647002", "Right Coronary Artery"),
    "AM1": Segment("AM1", "first acute marginal", None, "22765000", "Marginal Coronary Artery"),
    "AM2": Segment("AM2", "second acute marginal", None, "22765000", "Marginal Coronary Artery"),
}

# (fraction of the vessel's length from its origin where the next segment starts, segment)
_MAIN: dict[str, tuple[tuple[float, Segment], ...]] = {
    "LM": ((0.0, LM),),
    # the first septal or diagonal leaves at 0.12-0.3; the mid LAD ends half way to the apex
    "LAD": ((0.0, PLAD), (0.2, MLAD), (0.6, DLAD)),
    # the first obtuse marginal leaves at 0.25-0.45
    "LCX": ((0.0, PLCX), (0.35, DLCX)),
    # the acute marginals leave at 0.35-0.7, the PDA at 0.82-0.9
    "RCA": ((0.0, PRCA), (0.25, MRCA), (0.5, DRCA), (0.86, RPLB)),
}

VESSELS = tuple(TERRITORY)


def segment_of(vessel: str, position: float | None) -> Segment:
    """The segment of ``vessel`` at ``position`` (0 at its origin, 1 at its end; None
    takes the middle). ``ValueError`` for a vessel this model of the tree does not know.

    Examples
    --------
    >>> segment_of("LAD", 0.4).label
    'mid LAD (segment 7)'
    >>> segment_of("OM1", None).code
    '91754001'
    """
    if vessel in BRANCHES:
        return BRANCHES[vessel]
    if vessel not in _MAIN:
        raise ValueError(f"unknown coronary vessel {vessel!r}; known: {', '.join(VESSELS)}")
    where = 0.5 if position is None else min(1.0, max(0.0, float(position)))
    chosen = _MAIN[vessel][0][1]
    for start, segment in _MAIN[vessel]:
        if where >= start:
            chosen = segment
    return chosen
