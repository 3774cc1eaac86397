"""Vessels and segments: the SCCT segment of a place along a vessel, the SNOMED CT codes
DICOM lists for them, and reading the model's vessel maps at a lesion."""

from __future__ import annotations

import numpy as np
import pytest
from cardiogate_phantoms.xa_views import LCA_VESSELS, RCA_VESSELS
from pydicom.sr._concepts_dict import concepts

from cardiogate.errors import CardiogateError
from cardiogate.tasks.stenosis.analysis import vessel_maps
from cardiogate.tasks.stenosis.segments import BRANCHES, TERRITORY, VESSELS, segment_of


def _snomed() -> dict[str, tuple[set[str], set[int]]]:
    """SNOMED CT concept id -> (its meanings, the CIDs that list it), from pydicom's copy
    of PS3.16."""
    out: dict[str, tuple[set[str], set[int]]] = {}
    for by_value in concepts["SCT"].values():
        for value, (meaning, cids) in by_value.items():
            meanings, lists = out.setdefault(value, (set(), set()))
            meanings.add(meaning.lower())
            lists.update(cids)
    return out


@pytest.mark.parametrize(
    ("vessel", "position", "name", "scct"),
    [
        ("LM", 0.5, "left main", 5),
        ("LAD", 0.05, "proximal LAD", 6),
        ("LAD", 0.4, "mid LAD", 7),
        ("LAD", 0.8, "distal LAD", 8),
        ("LCX", 0.1, "proximal LCX", 11),
        ("LCX", 0.7, "distal LCX", 13),
        ("RCA", 0.1, "proximal RCA", 1),
        ("RCA", 0.4, "mid RCA", 2),
        ("RCA", 0.7, "distal RCA", 3),
        ("RCA", 0.95, "right posterolateral branch", 16),
        ("D1", 0.5, "first diagonal", 9),
        ("OM2", 0.1, "second obtuse marginal", 14),
        ("PDA", 0.9, "right posterior descending", 4),
        ("AM1", 0.5, "first acute marginal", None),
    ],
)
def test_a_place_along_a_vessel_is_its_scct_segment(
    vessel: str, position: float, name: str, scct: int | None
) -> None:
    segment = segment_of(vessel, position)
    assert (segment.name, segment.scct) == (name, scct)


def test_every_segment_code_is_the_snomed_concept_dicom_lists_with_that_meaning() -> None:
    snomed = _snomed()
    segments = {segment_of(v, p) for v in VESSELS for p in np.linspace(0, 1, 21)}
    assert len(segments) >= 20
    for segment in segments:
        meanings, cids = snomed[segment.code]
        # CID 3014 Coronary Artery Segments, or CID 3016 Major Coronary Arteries (in
        # CID 12292) for the branches that have no code of their own
        assert cids & {3014, 3016, 12292}, segment
        assert segment.meaning.lower() in meanings, segment


def test_every_phantom_vessel_has_a_segment_and_an_artery() -> None:
    for vessel in LCA_VESSELS | RCA_VESSELS | {"D3", "OM3"}:
        assert TERRITORY[vessel] in ("LM", "LAD", "LCX", "RCA")
        segment_of(vessel, 0.5)  # no error
    assert set(BRANCHES) | {"LM", "LAD", "LCX", "RCA"} == set(VESSELS)
    with pytest.raises(ValueError, match="unknown coronary vessel 'LIMA'"):
        segment_of("LIMA", 0.5)


CLASSES = ["background", "LM", "LAD", "LCX", "RCA"]


def _outputs(vessel_at: tuple[int, int], cls: str, position: float) -> dict[str, np.ndarray]:
    """Model outputs for one frame: background everywhere but a 3x3 patch of ``cls``."""
    logits = np.zeros((1, len(CLASSES), 16, 16), dtype=np.float32)
    logits[:, 0] = 4.0
    r, c = vessel_at
    logits[0, CLASSES.index(cls), r - 1 : r + 2, c - 1 : c + 2] = 6.0
    logits[0, 0, r, c] = 6.5  # the narrowed lumen's own cell reads as background
    pos = np.full((1, 1, 16, 16), 0.9, dtype=np.float32)
    pos[0, 0, r - 1 : r + 2, c - 1 : c + 2] = position
    return {"vessel": logits, "position": pos}


def test_the_lesion_takes_the_vessel_around_its_peak_even_where_its_cell_is_background() -> None:
    maps = vessel_maps(_outputs((8, 5), "LAD", 0.42), {"vessel_classes": CLASSES})
    assert maps is not None
    named = maps.at(0, 8.2, 4.9)
    assert named["vessel"] == "LAD"
    assert named["artery"] == "LAD"
    assert named["vessel_probability"] > 0.9
    assert named["position_along_vessel"] == pytest.approx(0.42, abs=0.01)
    assert (named["segment"], named["scct_segment"], named["segment_code"]) == (
        "mid LAD",
        7,
        "91748002",
    )


def test_a_lesion_at_the_edge_of_the_map_is_read_too() -> None:
    maps = vessel_maps(_outputs((1, 14), "RCA", 0.1), {"vessel_classes": CLASSES})
    assert maps is not None
    assert maps.at(0, 0.0, 15.0)["segment"] == "proximal RCA"


def test_a_model_without_vessel_outputs_names_none() -> None:
    assert vessel_maps({"heatmap": np.zeros((1, 1, 4, 4))}, {}) is None


def test_a_card_that_does_not_match_the_vessel_output_is_refused_by_name() -> None:
    outputs = _outputs((8, 8), "LAD", 0.5)
    with pytest.raises(CardiogateError, match=r"card names 4 classes \(postprocessing"):
        vessel_maps(outputs, {"vessel_classes": CLASSES[:4]})
    with pytest.raises(CardiogateError, match="does not know: LIMA"):
        vessel_maps(outputs, {"vessel_classes": [*CLASSES[:4], "LIMA"]})
