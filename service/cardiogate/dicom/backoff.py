"""Exponential backoff with jitter for failed deliveries."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """After the n-th failure wait ``min(maximum, initial * 2**(n - 1))``, scaled by a
    factor drawn from [0.5, 1.0) so that many objects that failed together do not retry in
    lock step ("equal jitter"). ``uniform`` returns a number in [0, 1); inject it in tests.
    """

    initial: float
    maximum: float
    max_attempts: int
    uniform: Callable[[], float] = field(default=random.random)

    def delay(self, attempts: int) -> float:
        base = min(self.maximum, self.initial * 2.0 ** max(0, attempts - 1))
        return base * (0.5 + 0.5 * self.uniform())
