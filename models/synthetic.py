"""Seeded synthetic sales series for tests, doctests and benchmarks (no real data needed).

>>> s = seasonal_series(10, seed=1)
>>> len(s), min(s) >= 0
(10, True)
"""

from __future__ import annotations

import math
import random


def seasonal_series(
    n: int,
    *,
    level: float = 100.0,
    trend: float = 0.3,
    period: float = 52.0,
    amplitude: float = 20.0,
    weekly_period: float = 0.0,
    weekly_amplitude: float = 0.0,
    noise: float = 5.0,
    seed: int = 0,
) -> list[float]:
    """Trend + yearly (and optionally weekly) seasonality + Gaussian noise, clipped at 0."""
    rng = random.Random(seed)
    out = []
    for t in range(n):
        y = level + trend * t + amplitude * math.sin(2 * math.pi * t / period)
        if weekly_period:
            y += weekly_amplitude * math.sin(2 * math.pi * t / weekly_period)
        out.append(max(0.0, y + rng.gauss(0.0, noise)))
    return out


def signal_driven_series(
    n: int,
    *,
    lag: int = 3,
    effect: float = 40.0,
    rate: float = 0.15,
    level: float = 100.0,
    noise: float = 4.0,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """Demand that rises by ``effect`` ``lag`` periods after each signal (e.g. a tender award).

    Returns ``(sales, signal)``; the signal is 1.0 in the periods where it fired.
    """
    rng = random.Random(seed)
    signal = [1.0 if rng.random() < rate else 0.0 for _ in range(n)]
    sales = []
    for t in range(n):
        boost = effect * signal[t - lag] if t >= lag else 0.0
        sales.append(max(0.0, level + boost + rng.gauss(0.0, noise)))
    return sales, signal
