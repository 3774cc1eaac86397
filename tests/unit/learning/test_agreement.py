"""Kappa and Dice against values worked by hand (textbook tables)."""

from __future__ import annotations

import pytest

from cardiogate.learning.agreement import cohen_kappa, dice, fleiss_from_ratings, fleiss_kappa

# Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa": 10 items, 14 raters, 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_of_the_textbook_table() -> None:
    # P-bar 0.378, P_e 0.213: kappa 0.210
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_from_ratings_perfect_and_undefined() -> None:
    assert fleiss_from_ratings([["LAD", "LAD", "LAD"], ["RCA", "RCA", "RCA"]]) == 1.0
    # every rating in one category: chance agreement is 1, kappa undefined
    assert fleiss_from_ratings([["LAD", "LAD"], ["LAD", "LAD"]]) is None


def test_cohen_kappa_of_the_textbook_table() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_dice_is_area_weighted() -> None:
    # A = {0 (2 mm2), 1 (1 mm2)}, B = {0, 2 (1 mm2)}: 2*2 / (3 + 3)
    assert dice([True, True, False], [True, False, True], [2.0, 1.0, 1.0]) == pytest.approx(2 / 3)
    assert dice([False], [False], [1.0]) is None
