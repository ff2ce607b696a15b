"""The Mann-Whitney U test (two-sided), for tests that compare two samples
of measurements without assuming their distribution.

    p = mann_whitney_u(first, second)   # small p: the samples differ in location
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mann_whitney_u(first: Sequence[float], second: Sequence[float]) -> float:
    """The two-sided p-value of the Mann-Whitney U test of ``first`` against
    ``second``: the normal approximation with the tie correction and a
    continuity correction (as scipy.stats.mannwhitneyu(method="asymptotic")),
    sound for samples of 20 or more each."""
    n1, n2 = len(first), len(second)
    if n1 < 20 or n2 < 20:
        raise ValueError("the normal approximation needs at least 20 values in each sample")
    pooled = sorted([(value, 0) for value in first] + [(value, 1) for value in second])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    rank_sum = sum(rank for rank, (_, group) in zip(ranks, pooled) if group == 0)
    u = rank_sum - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u - mean) - 0.5) / sigma
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
