"""Evaluate a shipped model on one phantom family's held-out cases, with 95% bootstrap CIs.

    PYTHONPATH=models/training .venv/bin/python models/training/evaluate_cross_family.py \\
        --task calcium --model models/calcium --family b --out models/evaluation/x.json

Runs every case through the service's own analysis (calcium: ``predict_labels`` then
``agatston_scores``; stenosis: ``analyze_xa``) on the family's fixed test seeds
(:mod:`cgtrain.families`), then reports each metric on all cases with its percentile
bootstrap interval (cases resampled whole, :mod:`cgtrain.bootstrap`), the same by stratum
(slice thickness, noise, body size, metal; or noise, bit depth, size, overlap) and by
lesion band. The output keeps every case's outcome, so ``--from-cases`` recomputes the
intervals without running the model again. Synthetic phantoms only: not clinical evidence.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cardiogate.inference.engine import load_model
from cgtrain import calcium_cases, stenosis_cases
from cgtrain.bootstrap import RESAMPLES, intervals, stratified
from cgtrain.families import FAMILIES, TASKS, describe, seeds

DEFAULT_CASES = {"calcium": 40, "stenosis": 80}
DEFAULT_SLICES = {"a": 40, "b": None}  # A: as its card; B: the whole tree, its own thickness


def aortic_valve(cases: Sequence[dict[str, Any]], *, resamples: int, seed: int) -> dict[str, Any]:
    """The aortic valve score against the phantoms' (with intervals), or why there is none."""
    valves = [c["aortic_valve"] for c in cases if c.get("aortic_valve")]
    if not valves:
        return {"skipped": "the phantoms carry no aortic valve truth (aortic_valve_agatston)"}
    truth = {
        "scans_with_valve_calcium": sum(v["truth"] > 0 for v in valves),
        "truth_mean_agatston": round(sum(v["truth"] for v in valves) / len(valves), 2),
    }
    if all(v.get("predicted") is None for v in valves):
        return {
            "skipped": "the model does not label aortic valve calcium (no AV in its card's "
            "labels), so the service reports no aortic valve score",
            **truth,
        }
    metrics = calcium_cases.VALVE_METRICS
    return {**truth, **intervals(cases, metrics, resamples=resamples, seed=seed)}


def report(
    task: str,
    cases: list[dict[str, Any]],
    *,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Metrics with intervals, lesion bands, strata and the summary table, from the cases."""
    module: Any = calcium_cases if task == "calcium" else stenosis_cases
    metrics: dict[str, Callable[[Sequence[dict[str, Any]]], float | None]] = module.METRICS
    if task == "calcium":
        bands = calcium_cases.lesion_size_metrics()
        extra = {"false_positive_kinds": calcium_cases.false_positive_kind_metrics(cases)}
    else:
        bands = stenosis_cases.lesion_band_metrics()
        extra = {}
    chosen = {name: metrics[name] for name in module.STRATUM_METRICS}
    out: dict[str, Any] = {
        "bootstrap": {
            "method": "percentile, cases (scans or cines) resampled with replacement",
            "resamples": resamples,
            "seed": seed,
            "level": 0.95,
        },
        "counts": module.counts(cases),
        "metrics": intervals(cases, metrics, resamples=resamples, seed=seed),
        "lesion_bands": intervals(cases, bands, resamples=resamples, seed=seed),
    }
    for name, group in extra.items():
        out[name] = intervals(cases, group, resamples=resamples, seed=seed)
    out["strata"] = stratified(
        cases, lambda c: module.strata_of(c["difficulty"]), chosen, resamples=resamples, seed=seed
    )
    if task == "calcium":
        out["aortic_valve"] = aortic_valve(cases, resamples=resamples, seed=seed)
    out["summary"] = {name: summary_cell(m) for name, m in out["metrics"].items()}
    return out


def summary_cell(interval: dict[str, Any]) -> str:
    """``"0.981 (0.950-1.000)"``; ``"n/a"`` for a metric the cases do not define."""
    estimate, (low, high) = interval["estimate"], interval["ci95"]
    if estimate is None:
        return "n/a"
    if low is None:
        return f"{estimate:.3f} (no interval)"
    return f"{estimate:.3f} ({low:.3f}-{high:.3f})"


def run_cases(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    test = seeds(args.task, args.family).first("test", args.cases)
    providers = ["CPUExecutionProvider"]
    model = load_model(args.model, providers)

    def log(message: str) -> None:
        if args.verbose:
            print(message, file=sys.stderr, flush=True)

    if args.task == "calcium":
        cases = calcium_cases.evaluate_cases(
            model, args.family, test, rows=args.rows, n_slices=args.slices, log=log
        )
    else:
        cases = stenosis_cases.evaluate_cases(
            model, args.family, test, match_mm=args.match_mm, log=log
        )
    card = model.card
    about: dict[str, Any] = {
        "model": {
            "folder": str(args.model),
            "name": card.name,
            "version": card.version,
            "sha256": card.sha256,
            "training_data": card.training_data,
        },
        "test_seeds": describe(test),
    }
    if args.task == "calcium":
        about["scan_size"] = {
            "rows": args.rows,
            "columns": args.rows,
            "slices": args.slices or "the family's own coverage",
        }
    else:
        about["match_mm"] = args.match_mm
        about["lesion_threshold"] = float(card.postprocessing.get("lesion_threshold", 0.5))
    return cases, about


def compact_json(value: Any, indent: str = "") -> str:
    """JSON with one item a line, except that a list or object that fits in 100 characters
    stays on one line (a metric's interval, a case's strata)."""
    flat = json.dumps(value)
    if len(flat) + len(indent) <= 100 or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + " "
    if isinstance(value, list):
        items = [inner + compact_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    items = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + indent + "}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--model", type=Path, help="model folder (card.json + model.onnx)")
    parser.add_argument("--family", choices=FAMILIES, required=True, help="test phantom family")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--cases",
        type=int,
        help="test cases, from the start of the family's test range "
        f"(default: calcium {DEFAULT_CASES['calcium']}, stenosis {DEFAULT_CASES['stenosis']})",
    )
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--match-mm", type=float, default=3.0, help="stenosis: match distance")
    parser.add_argument("--rows", type=int, default=512, help="calcium: matrix size")
    parser.add_argument(
        "--slices",
        type=int,
        help="calcium: slices per scan (default: family a 40 as its card; family b its own "
        "coverage of the whole tree, up to 160)",
    )
    parser.add_argument(
        "--from-cases", type=Path, help="recompute the intervals from this output's cases"
    )
    parser.add_argument("--verbose", action="store_true", help="print progress to stderr")
    args = parser.parse_args(argv)
    args.cases = args.cases or DEFAULT_CASES[args.task]
    args.slices = args.slices or DEFAULT_SLICES[args.family]
    started = time.perf_counter()
    if args.from_cases:
        earlier = json.loads(args.from_cases.read_text())
        if earlier.get("task") != args.task or earlier.get("family") != args.family:
            parser.error(
                f"{args.from_cases} holds task {earlier.get('task')!r}, family "
                f"{earlier.get('family')!r}, not {args.task!r}, {args.family!r}"
            )
        cases = earlier["cases"]
        about = {
            k: earlier[k]
            for k in ("model", "test_seeds", "scan_size", "match_mm", "lesion_threshold")
            if k in earlier
        }
        case_seconds = earlier.get("seconds", {}).get("cases")
    else:
        if args.model is None:
            parser.error("--model is required unless --from-cases is given")
        cases, about = run_cases(args)
        case_seconds = round(time.perf_counter() - started, 1)
    t0 = time.perf_counter()
    result = report(args.task, cases, resamples=args.resamples, seed=args.seed)
    output = {
        "task": args.task,
        "family": args.family,
        **about,
        "cases_evaluated": len(cases),
        **result,
        "seconds": {"cases": case_seconds, "bootstrap": round(time.perf_counter() - t0, 1)},
        "notice": "synthetic phantoms only; not clinical evidence",
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(compact_json(output) + "\n")
    print(f"{args.task} on family {args.family} ({len(cases)} cases, {about.get('test_seeds')}):")
    for name, cell in result["summary"].items():
        print(f"  {name:36s} {cell}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
