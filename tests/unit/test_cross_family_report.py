"""The cross-family tables: every evaluation file becomes a column with its intervals, the
block in a document is replaced and nothing else, and a card gets its own evaluations and
the one-family directions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "training"))
import cross_family_report as report


def _evaluation(sha: str, kappa: float, low: float, high: float) -> dict[str, Any]:
    return {
        "model": {"name": "m", "version": "1", "sha256": sha},
        "test_seeds": "1-40",
        "cases_evaluated": 40,
        "metrics": {"kappa_classic_linear": {"estimate": kappa, "ci95": [low, high]}},
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, evaluation in {
        "calcium_trained_a_on_a.json": _evaluation("a" * 64, 0.977, 0.925, 1.0),
        "calcium_trained_a_on_b.json": _evaluation("a" * 64, 0.397, 0.24, 0.573),
        "calcium_trained_b_on_a.json": _evaluation("b" * 64, 0.5, 0.3, 0.7),
        "notes.json": {"not": "an evaluation"},
    }.items():
        (tmp_path / name).write_text(json.dumps(evaluation))
    return tmp_path


def test_each_evaluation_is_a_column_with_its_interval_and_direction(folder: Path) -> None:
    table = report.table("calcium", report.evaluations(folder))
    header, _, kappa, cases = table.splitlines()
    assert "trained on A, tested on B (**other family**)" in header
    assert "trained on B, tested on A (**other family**)" in header
    assert "trained on A, tested on A (same family)" in header
    assert kappa.startswith("| risk-category agreement (linear kappa) | >= 0.90 |")
    assert "0.397 (0.240-0.573)" in kappa
    assert "0.977 (0.925-1.000)" in kappa
    assert cases.count("40 (1-40)") == 3
    assert report.table("stenosis", report.evaluations(folder)) == ""


def test_the_block_is_replaced_and_the_rest_kept() -> None:
    page = f"before\n{report.BEGIN}\nold table\n{report.END}\nafter\n"
    replaced = report.replace_block(page, "NEW")
    assert replaced == f"before\n{report.BEGIN}\n\nNEW\n\n{report.END}\nafter\n"
    assert report.replace_block(replaced, "NEW") == replaced  # idempotent
    with pytest.raises(SystemExit):
        report.replace_block("no block here", "NEW")


def test_a_card_gets_its_own_evaluations_and_the_one_family_directions(folder: Path) -> None:
    card = {"task": "calcium", "sha256": "a" * 64}
    section = report.card_section(card, report.evaluations(folder))
    assert [(e["trained_on"], e["tested_on"]) for e in section["this_model"]] == [
        ("a", "a"),
        ("a", "b"),
    ]
    assert [(e["trained_on"], e["tested_on"]) for e in section["directions"]] == [
        ("a", "a"),
        ("a", "b"),
        ("b", "a"),
    ]
    assert "bootstrap" in section["method"]
