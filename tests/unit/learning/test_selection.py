"""The review selection strategy: criteria in order, the audit draw, the daily budget, the
yield per criterion, and the budget counted from the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cardiogate.config import ReviewStrategy
from cardiogate.inference.card import read_card
from cardiogate.inference.ood import PREFIX, assess
from cardiogate.learning.selection import (
    audit_draw,
    decide,
    flag_later,
    reason_criteria,
    record_criterion,
    selected_today,
    yield_ratios,
)
from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue

MODELS = Path(__file__).resolve().parents[3] / "models"
UNCERTAIN = "1 lesion(s) with a peak below 150 HU (threshold 130 HU)"
OOD = f"{PREFIX}: image noise 60 HU (training 8-26 HU)"


def test_reasons_are_told_apart_by_the_ood_wording() -> None:
    assert reason_criteria(None) == (False, False)
    assert reason_criteria(UNCERTAIN) == (True, False)
    assert reason_criteria(OOD) == (False, True)
    assert reason_criteria(f"{UNCERTAIN}; {OOD}") == (True, True)


def test_the_calcium_models_ood_reason_is_classified_as_ood() -> None:
    card = read_card(MODELS / "calcium")
    assert card.ood is not None
    unusual = {f.name: f.centre for f in card.ood.features} | {"noise_hu": 400.0}
    reason = assess(card.ood, unusual).reason
    assert reason is not None
    assert reason_criteria(reason) == (False, True)
    assert reason_criteria(f"{UNCERTAIN}; {reason}") == (True, True)


@pytest.mark.parametrize(
    ("reason", "disagreement", "audit", "expected"),
    [
        (f"{UNCERTAIN}; {OOD}", "category A1 -> A2", 1.0, "uncertainty"),
        (OOD, "category A1 -> A2", 1.0, "ood"),
        (None, "category A1 -> A2", 1.0, "shadow_disagreement"),
        (None, None, 1.0, "audit"),
        (None, None, 0.0, None),
    ],
)
def test_the_first_criterion_that_holds_selects(
    reason: str | None, disagreement: str | None, audit: float, expected: str | None
) -> None:
    chosen = decide(
        ReviewStrategy(audit_fraction=audit),
        review_reason=reason,
        key="1.2.3",
        selected_today=0,
        disagreement=disagreement,
    )
    assert chosen.criterion == expected
    assert chosen.needs_review is (expected is not None)
    if expected == "shadow_disagreement":
        assert chosen.reason == "the candidate model disagrees: category A1 -> A2"
    if expected in ("uncertainty", "ood"):
        assert chosen.reason == reason


def test_a_criterion_switched_off_gives_way_to_the_next() -> None:
    strategy = ReviewStrategy(uncertainty=False, audit_fraction=0.0)
    assert decide(strategy, review_reason=UNCERTAIN, key="1", selected_today=0).criterion is None
    both = decide(strategy, review_reason=f"{UNCERTAIN}; {OOD}", key="1", selected_today=0)
    assert both.criterion == "ood"
    off = ReviewStrategy(ood=False, shadow_disagreement=False)
    assert decide(off, review_reason=OOD, key="1", selected_today=0).criterion is None
    assert (
        decide(off, review_reason=None, key="1", selected_today=0, disagreement="x").criterion
        is None
    )


def test_the_audit_draws_close_to_its_fraction_and_the_same_for_the_same_series() -> None:
    strategy = ReviewStrategy(audit_fraction=0.1)
    keys = [f"1.2.826.0.1.3680043.8.498.{i}" for i in range(1000)]
    chosen = [decide(strategy, review_reason=None, key=k, selected_today=0) for k in keys]
    audited = sum(c.criterion == "audit" for c in chosen)
    assert 70 <= audited <= 130  # 100 expected; 3 standard deviations ~ 28
    again = [decide(strategy, review_reason=None, key=k, selected_today=0) for k in keys]
    assert again == chosen
    assert all(0.0 <= audit_draw(k) < 1.0 for k in keys)


def test_over_the_daily_budget_nothing_is_selected_and_the_criterion_is_named() -> None:
    strategy = ReviewStrategy(daily_budget=2)
    within = decide(strategy, review_reason=UNCERTAIN, key="1", selected_today=1)
    assert within.criterion == "uncertainty"
    over = decide(strategy, review_reason=UNCERTAIN, key="1", selected_today=2)
    assert (over.criterion, over.reason, over.over_budget) == (None, None, "uncertainty")
    zero = ReviewStrategy(daily_budget=0, audit_fraction=1.0)
    assert decide(zero, review_reason=None, key="1", selected_today=0).over_budget == "audit"


def test_yield_is_the_share_of_settled_cases_reviewers_changed_per_criterion() -> None:
    pairs = [("uncertainty", True), ("uncertainty", False), ("uncertainty", True)]
    pairs += [("audit", False), ("audit", False)]
    ratios = yield_ratios(pairs)
    assert ratios == pytest.approx({"uncertainty": 2 / 3, "audit": 0.0})
    assert yield_ratios([]) == {}


def _reported(store: Store, uids: list[str], now: datetime) -> list[int]:
    """Jobs of ``uids`` reported at ``now``, each flagged by its task."""
    queue = JobQueue(store, clock=lambda: now)
    ids = []
    with store.transaction() as conn:
        conn.exec_driver_sql("INSERT OR IGNORE INTO studies VALUES ('1.2', ?, ?)", (now, now))
        for uid in uids:
            conn.exec_driver_sql(
                "INSERT INTO series (series_instance_uid, study_instance_uid, state, "
                "first_received_at, last_received_at, reopened_count) "
                "VALUES (?, '1.2', 'complete', ?, ?, 0)",
                (uid, now, now),
            )
    for uid in uids:
        queue.enqueue(uid, "1.2", "calcium")
        job = queue.claim()
        assert job is not None
        assert queue.finish(job, '{"task": "calcium"}', "m", "1", "CPU", review_reason="r")
        ids.append(job.id)
    return ids


def test_the_budget_counts_todays_selected_jobs_in_the_store(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    now = datetime(2026, 3, 4, 15, 0)
    yesterday = _reported(store, ["1.2.1"], now - timedelta(days=1))
    today = _reported(store, ["1.2.2", "1.2.3", "1.2.4"], now)
    with store.transaction() as conn:
        for job_id in (*yesterday, *today[:2]):
            record_criterion(conn, job_id, "uncertainty")
    assert selected_today(store, now) == 2
    assert selected_today(store, now, job_id=today[0]) == 1  # a re-run does not count itself
    chosen = decide(
        ReviewStrategy(), review_reason=None, key="1", selected_today=0, disagreement="d"
    )
    with store.transaction() as conn:
        record_criterion(conn, today[2], None)
        conn.exec_driver_sql("UPDATE jobs SET needs_review = 0 WHERE id = ?", (today[2],))
        digest = conn.exec_driver_sql(
            "SELECT result_digest FROM jobs WHERE id = ?", (today[2],)
        ).scalar_one()
    assert not flag_later(store, today[2], "another-result", chosen)
    assert flag_later(store, today[2], digest, chosen)
    assert not flag_later(store, today[2], digest, chosen)  # flagged already
    assert selected_today(store, now) == 3
    store.dispose()
