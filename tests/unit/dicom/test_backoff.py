"""The retry delay: doubling from the initial delay, capped, with equal jitter."""

from __future__ import annotations

import pytest

from cardiogate.dicom.backoff import Backoff


def test_delay_doubles_up_to_the_maximum_without_jitter_at_its_top() -> None:
    backoff = Backoff(initial=2.0, maximum=30.0, max_attempts=10, uniform=lambda: 1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_jitter_takes_between_half_and_all_of_the_delay() -> None:
    low = Backoff(initial=4.0, maximum=100.0, max_attempts=5, uniform=lambda: 0.0)
    mid = Backoff(initial=4.0, maximum=100.0, max_attempts=5, uniform=lambda: 0.5)
    assert low.delay(3) == pytest.approx(8.0)
    assert mid.delay(3) == pytest.approx(12.0)
