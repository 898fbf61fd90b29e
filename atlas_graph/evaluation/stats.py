"""Statistics of evaluation runs: proportions with intervals, paired differences, percentiles.

Pure functions over plain numbers, so the reports and their tests share one definition.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95 % interval."""


@dataclass(frozen=True)
class Interval:
    """An estimate with the bounds of its 95 % interval."""

    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson(successes: int, trials: int, z: float = Z95) -> Interval | None:
    """Wilson score interval of a proportion; it stays inside [0, 1] even at 0 or n successes.

    Returns None for no trials (there is no proportion to speak of).
    """
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class PairedDifference:
    """Supervised minus baseline accuracy over the same tasks, and the discordant counts.

    ``gained``: tasks right only when supervised; ``lost``: right only with the student alone
    (the non-degradation failures).
    """

    pairs: int
    gained: int
    lost: int
    difference: Interval
    mcnemar_p: float

    def as_dict(self) -> dict[str, object]:
        return {
            "pairs": self.pairs, "gained": self.gained, "lost": self.lost,
            "difference": self.difference.as_dict(), "mcnemar_p": self.mcnemar_p,
        }  # fmt: skip


def paired_difference(
    supervised: Sequence[bool], baseline: Sequence[bool], z: float = Z95
) -> PairedDifference | None:
    """Accuracy difference of paired outcomes with a Wald interval on the discordant pairs.

    The interval is the one McNemar's test pairs with (Agresti's, with the +1 adjustment that
    keeps it honest on small samples); the p value is McNemar's exact binomial test.
    """
    if len(supervised) != len(baseline):
        raise ValueError("paired outcomes need as many supervised as baseline results")
    n = len(supervised)
    if n == 0:
        return None
    gained = sum(1 for s, b in zip(supervised, baseline, strict=True) if s and not b)
    lost = sum(1 for s, b in zip(supervised, baseline, strict=True) if b and not s)
    estimate = (gained - lost) / n
    # Agresti-Min: add a half to each cell (one to the discordant total) before the Wald step
    g, lo, m = gained + 0.5, lost + 0.5, n + 2
    d = (g - lo) / m
    variance = ((g + lo) - (g - lo) ** 2 / m) / (m * m)
    half = z * math.sqrt(max(variance, 0.0))
    interval = Interval(estimate, max(-1.0, d - half), min(1.0, d + half))
    return PairedDifference(n, gained, lost, interval, mcnemar_exact(gained, lost))


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p value: a binomial test of the discordant pairs at one half."""
    total = gained + lost
    if total == 0:
        return 1.0
    smaller = min(gained, lost)
    tail = sum(math.comb(total, k) for k in range(smaller + 1)) / 2**total
    return min(1.0, 2 * tail)


def paired_bootstrap(
    supervised: Sequence[bool],
    baseline: Sequence[bool],
    *,
    samples: int = 2000,
    seed: int = 0,
) -> Interval | None:
    """Percentile bootstrap interval of the paired accuracy difference (seeded: reproducible)."""
    n = len(supervised)
    if n == 0 or n != len(baseline):
        return None
    deltas = [int(s) - int(b) for s, b in zip(supervised, baseline, strict=True)]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(samples))
    return Interval(
        sum(deltas) / n, means[int(0.025 * (samples - 1))], means[int(0.975 * (samples - 1))]
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return sum(values) / len(values) if values else None


def stdev(values: Sequence[float]) -> float | None:
    """Sample standard deviation; None for fewer than two values."""
    if len(values) < 2:
        return None
    centre = sum(values) / len(values)
    return math.sqrt(sum((v - centre) ** 2 for v in values) / (len(values) - 1))


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation; None for fewer than two pairs or a constant series."""
    if len(xs) != len(ys) or len(xs) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            result[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on tie-averaged ranks); None where Pearson is None."""
    if len(xs) != len(ys):
        return None
    return pearson(ranks(xs), ranks(ys))
