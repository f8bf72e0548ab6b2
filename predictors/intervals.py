"""Confidence intervals for what a ranking study measures: a paired statistic over subnets, and an accuracy.

Fidelity numbers are computed on a few hundred subnets (or, in `oneshot run`, on a handful of retrained ones) and
each accuracy on a finite test split, so a point value alone overstates what is known. Two small tools:

- `bootstrap_interval`: percentile bootstrap of any statistic of paired samples (e.g. Kendall tau between the
  supernet's estimates and the standalone accuracies): the subnets are resampled with replacement, the pairs kept
  together. Seeded, so a report is reproducible to the digit.
- `wilson_interval`: the Wilson score interval of a binomial proportion (an accuracy of k correct out of n images);
  unlike the normal approximation it stays inside [0, 1] and behaves near 0 and 1.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_interval", "wilson_interval", "accuracy_interval", "DEFAULT_RESAMPLES"]

DEFAULT_RESAMPLES = 1000


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (lo, hi) of a proportion from `successes` out of `n` trials (NaNs when n == 0)."""
    _check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import norm  # here: scipy.stats takes about a second to import

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of an accuracy given as a fraction (0..1) of `n` test images."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy}")
    return wilson_interval(int(round(accuracy * n)), int(n), confidence)


def bootstrap_interval(
    statistic: Callable[..., float],
    *samples: Sequence[float] | np.ndarray,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval (lo, hi) of `statistic(*samples)`, resampling the paired items together.

    samples:     arrays of equal length, item i of each belonging to subnet i (e.g. estimates, true accuracies).
    statistic:   called with the resampled arrays in the same order; NaN results (e.g. a correlation of a
                 resample that happens to be constant) are left out. NaNs when more than half are NaN.
    n_resamples: bootstrap draws; seed: fixes them (the same seed gives the same interval).
    """
    _check_confidence(confidence)
    if not samples:
        raise ValueError("bootstrap_interval needs at least one sample array")
    arrays = [np.asarray(s, dtype=float).reshape(-1) for s in samples]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise ValueError(f"paired samples must have equal lengths, got {[a.size for a in arrays]}")
    if n < 2 or n_resamples < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng([seed, 0xB007])
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, n)
        values[b] = statistic(*(a[idx] for a in arrays))
    values = values[np.isfinite(values)]
    if values.size * 2 < n_resamples:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
