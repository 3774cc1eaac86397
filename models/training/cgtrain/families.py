"""The two phantom families, their fixed seed ranges, and one way to draw a case of either.

Family A is ``cardiogate_phantoms`` itself (``make_cardiac_phantom``, ``make_xa_cine``);
family B is ``cardiogate_phantoms.family_b`` (``make_ct_phantom_b``, ``make_xa_cine_b``),
drawn with other generators (noncoronary calcium by kind, metal, varied kernels, noise,
bit depth and sizes). A model trained on one family and tested on the other shows how far
it generalises beyond the data it was made from.

Every range here is fixed: training, validation and test seeds never overlap, within a
family or across families and modalities (a unit test checks it), so a number on a test
range is never a number on training data. Family A's ranges are the ones its model cards
report (calcium test 900000-900049, validation 800000-; stenosis test 910000-910239 of
which the card's AUC uses the first 80 and the vessel head's accuracy the odd ones). The
stenosis curriculum (``curriculum_sample``) draws from a random stream, not phantom seeds;
the vessel head trains on stenosis A's training range and validates on its validation one.

A held-out stenosis cine follows its seed: odd seeds carry the generator's own mix of
lesions, even seeds are normal (:func:`is_normal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FAMILIES = ("a", "b")
TASKS = ("calcium", "stenosis")
Family = Literal["a", "b"]
Task = Literal["calcium", "stenosis"]


@dataclass(frozen=True)
class SeedRanges:
    """The seeds one family offers one task for training, validation and test."""

    training: range
    validation: range
    test: range

    def first(self, which: str, n: int) -> range:
        """The first ``n`` seeds of ``which`` ("training", "validation", "test");
        ``ValueError`` when the range holds fewer."""
        whole: range = getattr(self, which)
        if not 0 <= n <= len(whole):
            raise ValueError(f"{which} range {describe(whole)} holds {len(whole)} seeds, not {n}")
        return range(whole.start, whole.start + n)


# The out-of-distribution calibration (calibrate_ood.py): family-A inputs it fits on and
# checks against, and family-B inputs it should flag; the same ranges for both tasks.
OOD_SEEDS: dict[str, range] = {
    "fit": range(700_000, 710_000),
    "held_out": range(710_000, 720_000),
    "other_family": range(720_000, 730_000),
}

SEEDS: dict[tuple[str, str], SeedRanges] = {
    ("calcium", "a"): SeedRanges(
        training=range(1_000, 100_000),
        validation=range(800_000, 800_100),
        test=range(900_000, 900_050),
    ),
    ("calcium", "b"): SeedRanges(
        training=range(300_000, 400_000),
        validation=range(850_000, 850_100),
        test=range(950_000, 950_060),
    ),
    ("stenosis", "a"): SeedRanges(
        training=range(600_000, 602_400),
        validation=range(602_400, 602_500),
        test=range(910_000, 910_240),
    ),
    ("stenosis", "b"): SeedRanges(
        training=range(400_000, 500_000),
        validation=range(860_000, 860_200),
        test=range(960_000, 960_120),
    ),
}


def seeds(task: str, family: str) -> SeedRanges:
    """The seed ranges of ``task`` ("calcium", "stenosis") in ``family`` ("a", "b")."""
    if (task, family) not in SEEDS:
        raise ValueError(f"no seed ranges for task {task!r} and family {family!r}")
    return SEEDS[(task, family)]


def describe(r: range) -> str:
    """``"900000-900049"``."""
    return f"{r.start}-{r.stop - 1}"


def is_normal(seed: int) -> bool:
    """Whether a held-out or training cine of ``seed`` is drawn without lesions."""
    return seed % 2 == 0


def ct_phantom(
    family: str,
    seed: int,
    *,
    n_slices: int | None = 40,
    rows: int = 512,
    pixel_spacing_mm: float | None = None,
) -> Any:
    """A seeded cardiac CT phantom of ``family``: ``CardiacPhantom`` (A) or ``CTPhantomB``
    (B), both with ``hu``, ``labels``, ``noncoronary``, geometry, ``truth_scores`` and
    ``aortic_valve_agatston``. ``n_slices`` None: the family's own coverage (A: 64 slices
    at 3 mm; B: the whole coronary tree at its seeded thickness, up to 160 slices)."""
    if family == "a":
        from cardiogate_phantoms import make_cardiac_phantom

        if n_slices is None:
            return make_cardiac_phantom(
                seed, rows=rows, columns=rows, pixel_spacing_mm=pixel_spacing_mm
            )
        return make_cardiac_phantom(
            seed, n_slices=n_slices, rows=rows, columns=rows, pixel_spacing_mm=pixel_spacing_mm
        )
    if family == "b":
        from cardiogate_phantoms.family_b.ct import make_ct_phantom_b

        return make_ct_phantom_b(
            seed, n_slices=n_slices, rows=rows, columns=rows, pixel_spacing_mm=pixel_spacing_mm
        )
    raise ValueError(f"unknown phantom family {family!r}; known: {', '.join(FAMILIES)}")


def xa_cine(family: str, seed: int, normal: bool) -> Any:
    """A seeded XA cine of ``family`` (``SyntheticSeries``: ``datasets`` and ``truth``),
    without lesions when ``normal``, else with its generator's own mix."""
    stenoses: list[Any] | None = [] if normal else None
    if family == "a":
        from cardiogate_phantoms import make_xa_cine

        return make_xa_cine(seed, stenoses=stenoses)
    if family == "b":
        from cardiogate_phantoms.family_b.xa import make_xa_cine_b

        return make_xa_cine_b(seed, stenoses=stenoses)
    raise ValueError(f"unknown phantom family {family!r}; known: {', '.join(FAMILIES)}")


def family_b_available(task: str = "calcium") -> bool:
    """Whether family B's generator for ``task`` is installed (tests skip B without it)."""
    try:
        if task == "calcium":
            from cardiogate_phantoms.family_b.ct import make_ct_phantom_b  # noqa: F401
        else:
            from cardiogate_phantoms.family_b.xa import make_xa_cine_b  # noqa: F401
    except ImportError:
        return False
    return True
