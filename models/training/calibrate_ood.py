"""Calibrate a model card's out-of-distribution check (``ood``, :mod:`cardiogate.inference.ood`).

    PYTHONPATH=models/training python models/training/calibrate_ood.py calcium \\
        --card models/calcium/card.json
    PYTHONPATH=models/training python models/training/calibrate_ood.py stenosis \\
        --card models/stenosis/card.json

The task's features (``cardiogate.tasks.<task>.ood_features``) are measured on seeded
phantoms of family A (what the shipped models were trained and tested on): a fit set gives
each feature's statistics and the distance threshold (the 99th percentile of the fit
cases' out-of-fold distances), a held-out set of fresh seeds the false-flag rate in family.
The seeds (700000-, 710000-, 720000-) lie outside every training, validation and test range
of ``cgtrain.families``. Family B
(``cardiogate_phantoms.family_b``), drawn differently, gives the flag rate out of family;
when it cannot be imported that rate is left out and said so. Without ``--card`` the
profile is printed, not written; with it, the card's ``ood`` key is replaced (or added at
the end) and every other key kept in its order. No patient data: phantoms only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cardiogate.analyses.xa_cine import load_xa_cine
from cardiogate.inference.card import ModelCard
from cardiogate.inference.ood import (
    FeatureSpec,
    OODCalibration,
    OODProfile,
    assess,
    fit_profile,
    flag_rate,
)
from cardiogate.tasks.calcium import ood_features as calcium_ood
from cardiogate.tasks.stenosis import ood_features as stenosis_ood
from cgtrain.calcium_eval import phantom_volume
from cgtrain.families import OOD_SEEDS

# never used in training, validation or test (cgtrain.families checks that no range overlaps)
FIT_SEEDS_FROM = OOD_SEEDS["fit"].start
HELD_OUT_SEEDS_FROM = OOD_SEEDS["held_out"].start
FAMILY_B_SEEDS_FROM = OOD_SEEDS["other_family"].start
CT_SLICES = 40  # as the calcium test set (models/calcium/card.json metrics.test_set)
QUANTILE = 0.99
FOLDS = 5

Features = dict[str, float]
Extract = Callable[[int], Features]


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def calcium_a(seed: int) -> Features:
    from cardiogate_phantoms import make_cardiac_phantom

    return calcium_ood.ct_features(phantom_volume(make_cardiac_phantom(seed, n_slices=CT_SLICES)))


def calcium_b(seed: int) -> Features:
    from cardiogate_phantoms.family_b import make_ct_phantom_b

    return calcium_ood.ct_features(phantom_volume(make_ct_phantom_b(seed, n_slices=CT_SLICES)))


def stenosis_a(seed: int) -> Features:
    from cardiogate_phantoms import make_xa_cine

    # as the stenosis test set: odd seeds the generator's own lesions, even seeds normal
    series = make_xa_cine(seed) if seed % 2 else make_xa_cine(seed, stenoses=[])
    return stenosis_ood.cine_features(load_xa_cine(series.datasets))


def stenosis_b(seed: int) -> Features:
    from cardiogate_phantoms.family_b.xa import make_xa_cine_b

    series = make_xa_cine_b(seed) if seed % 2 else make_xa_cine_b(seed, stenoses=[])
    return stenosis_ood.cine_features(load_xa_cine(series.datasets))


TASKS: dict[str, tuple[Sequence[FeatureSpec], Extract, Extract, str, str]] = {
    "calcium": (
        calcium_ood.FEATURES,
        calcium_a,
        calcium_b,
        f"cardiogate_phantoms.make_cardiac_phantom(seed, n_slices={CT_SLICES})",
        f"cardiogate_phantoms.family_b.make_ct_phantom_b(seed, n_slices={CT_SLICES})",
    ),
    "stenosis": (
        stenosis_ood.FEATURES,
        stenosis_a,
        stenosis_b,
        "cardiogate_phantoms.make_xa_cine(seed) (odd seeds; even seeds stenoses=[]), "
        "read by cardiogate.analyses.xa_cine.load_xa_cine",
        "cardiogate_phantoms.family_b.xa.make_xa_cine_b(seed) (odd seeds; even seeds "
        "stenoses=[]), read by load_xa_cine",
    ),
}


def measure(extract: Extract, seeds: range, what: str) -> list[Features]:
    t0 = time.perf_counter()
    cases = []
    for k, seed in enumerate(seeds):
        cases.append(extract(seed))
        if (k + 1) % 50 == 0:
            log(f"  {what}: {k + 1}/{len(seeds)} ({time.perf_counter() - t0:.0f} s)")
    return cases


def seeds_text(seeds: range) -> str:
    return f"seeds {seeds.start}-{seeds.stop - 1}"


def rounded(value: Any, digits: int = 6) -> Any:
    """Floats to ``digits`` significant digits, recursively (a readable card)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    return value


def named_features(profile: OODProfile, cases: Sequence[Features]) -> Counter[str]:
    """How often each feature is named in the reasons of the flagged ``cases``."""
    counts: Counter[str] = Counter()
    for case in cases:
        verdict = assess(profile, case)
        if verdict.flagged and verdict.reason is not None:
            counts.update(f.label for f in profile.features if f" {f.label} " in verdict.reason)
    return counts


def calibrate(task: str, fit: int, held_out: int, other: int) -> OODProfile:
    specs, family_a, family_b, a_text, b_text = TASKS[task]
    fit_seeds = range(FIT_SEEDS_FROM, FIT_SEEDS_FROM + fit)
    held_seeds = range(HELD_OUT_SEEDS_FROM, HELD_OUT_SEEDS_FROM + held_out)
    b_seeds = range(FAMILY_B_SEEDS_FROM, FAMILY_B_SEEDS_FROM + other)
    log(f"{task}: family A, {fit} fit and {held_out} held-out cases")
    fit_cases = measure(family_a, fit_seeds, "fit")
    held_cases = measure(family_a, held_seeds, "held-out")
    try:
        b_cases: list[Features] | None = measure(family_b, b_seeds, "family B")
    except ImportError as e:
        log(f"family B cannot be imported ({type(e).__name__}); its flag rate is left out")
        b_cases = None
    calibration = OODCalibration(
        data=f"family A: {a_text}, {seeds_text(fit_seeds)}",
        fit_cases=fit,
        threshold_rule=(
            f"{QUANTILE:.0%} quantile of the fit cases' distances, each measured by a profile "
            f"fitted without it ({FOLDS}-fold)"
        ),
        held_out_data=f"family A, {seeds_text(held_seeds)}",
        held_out_cases=held_out,
        notes=(
            "Features per cardiogate.tasks."
            f"{task}.ood_features; robust z-scores (median, 1.4826 x MAD floored at each "
            "feature's min_scale), Mahalanobis distance with a shrunk covariance. "
            "Synthetic phantoms only."
        ),
    )
    profile = fit_profile(specs, fit_cases, calibration=calibration, quantile=QUANTILE, folds=FOLDS)
    update: dict[str, Any] = {"held_out_flag_rate": round(flag_rate(profile, held_cases), 4)}
    if b_cases is None:
        update["notes"] = calibration.notes + " Family B was not importable when calibrated."
    else:
        update |= {
            "other_data": f"family B: {b_text}, {seeds_text(b_seeds)}",
            "other_cases": other,
            "other_flag_rate": round(flag_rate(profile, b_cases), 4),
        }
    profile = profile.model_copy(update={"calibration": calibration.model_copy(update=update)})
    profile = OODProfile.model_validate(rounded(profile.model_dump(mode="json")))
    log(f"threshold {profile.threshold:.3f}; held-out family A flagged {update}")
    log(f"  named in held-out A reasons: {dict(named_features(profile, held_cases))}")
    if b_cases is not None:
        log(f"  named in family B reasons: {dict(named_features(profile, b_cases))}")
        distances = [assess(profile, c).distance for c in b_cases]
        log(f"  family B distances: quartiles {np.percentile(distances, [25, 50, 75]).round(2)}")
    return profile


def write_card(path: Path, profile: OODProfile) -> None:
    """Replace (or add, at the end) the card's ``ood`` key; the rest stays as it was."""
    card = json.loads(path.read_text())
    card["ood"] = profile.model_dump(mode="json")
    ModelCard.model_validate(card)
    path.write_text(json.dumps(card, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--card", type=Path, help="card.json to write the ood section into")
    parser.add_argument("--fit", type=int, default=400, help="family A cases to fit on")
    parser.add_argument("--held-out", type=int, default=400, help="family A cases to test on")
    parser.add_argument("--other", type=int, default=100, help="family B cases")
    args = parser.parse_args(argv)
    profile = calibrate(args.task, args.fit, args.held_out, args.other)
    if args.card is None:
        print(json.dumps(profile.model_dump(mode="json"), indent=2))
    else:
        write_card(args.card, profile)
        log(f"wrote the ood section of {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
