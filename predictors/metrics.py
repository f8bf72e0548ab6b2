"""How good a predictor is: rank correlations, top-k precision, RMSE, uncertainty calibration, CV and learning curves.

Ranking is what search needs, so Kendall tau and Spearman rho come first; `precision_at_k` asks whether the
predicted top-k holds the true top-k (higher scores are better). For the std: `std_error_spearman` is the rank
correlation between |error| and std (positive means the std is informative: large where errors are large), and
`coverage` the fraction of true scores within mean +- z std (about 0.95 for z=2 when the std is calibrated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from supernets.space import Arch

from .base import Predictor, as_archs, check_scores

__all__ = [
    "kendall_tau", "spearman", "rank_agreement", "rmse", "precision_at_k", "std_error_spearman", "coverage",
    "score_predictions",
    "CVResult", "cross_validate", "learning_curve", "METRICS",
]

METRICS = ("kendall_tau", "spearman", "precision_at_k", "rmse", "std_error_spearman", "coverage")


def _pair(y_true: Sequence[float], y_pred: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=float).reshape(-1), np.asarray(y_pred, dtype=float).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"got {a.size} true and {b.size} predicted values; they must pair up")
    return a, b


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # undefined, not 0: a constant prediction carries no ranking at all
    return float(fn(a, b)[0])


def kendall_tau(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Kendall tau-b between true and predicted scores (NaN when either is constant)."""
    from scipy import stats  # here, as in every function below: scipy.stats takes about a second to import

    return _corr(stats.kendalltau, *_pair(y_true, y_pred))


def spearman(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Spearman rank correlation between true and predicted scores (NaN when either is constant)."""
    from scipy import stats

    return _corr(stats.spearmanr, *_pair(y_true, y_pred))


def rank_agreement(y_true: Sequence[float], y_pred: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """Kendall tau (with its p-value), Spearman and the count: how well one scoring ranks subnets like another
    (e.g. supernet accuracy vs standalone training); the rank correlation the whole project reports.

    Each correlation comes with its seeded 95% bootstrap interval over the subnets (`kendall_tau_ci`,
    `spearman_ci`): on a handful of subnets the point value alone misleads.
    """
    from scipy import stats

    from .intervals import bootstrap_interval

    a, b = _pair(y_true, y_pred)
    tau, p = (float("nan"),) * 2
    if a.size >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
        res = stats.kendalltau(a, b)
        tau, p = float(res[0]), float(res[1])
    out: dict[str, Any] = {"kendall_tau": tau, "kendall_p": p, "spearman": spearman(a, b), "n": int(a.size)}
    if a.size >= 3:
        out["kendall_tau_ci"] = list(bootstrap_interval(kendall_tau, a, b, seed=seed))
        out["spearman_ci"] = list(bootstrap_interval(spearman, a, b, seed=seed))
    return out


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Root mean squared error, in the units of the scores."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2))) if a.size else float("nan")


def precision_at_k(y_true: Sequence[float], y_pred: Sequence[float], k: int | float = 0.1) -> float:
    """Fraction of the true top-k (highest scores) found in the predicted top-k.

    `k` is a count, or a fraction of the set when below 1 (default: the top 10%, at least one).
    """
    a, b = _pair(y_true, y_pred)
    if a.size == 0:
        return float("nan")
    n = int(round(k * a.size)) if 0 < k < 1 else int(k)
    n = min(max(n, 1), a.size)
    # Stable sort on negated scores: ties keep input order, so the result does not depend on the platform.
    top_true = set(np.argsort(-a, kind="stable")[:n].tolist())
    top_pred = set(np.argsort(-b, kind="stable")[:n].tolist())
    return len(top_true & top_pred) / n


def std_error_spearman(y_true: Sequence[float], mean: Sequence[float], std: Sequence[float]) -> float:
    """Spearman correlation between |y_true - mean| and std: > 0 when the std is informative about errors."""
    a, m = _pair(y_true, mean)
    _, s = _pair(y_true, std)
    from scipy import stats

    return _corr(stats.spearmanr, np.abs(a - m), s)


def coverage(y_true: Sequence[float], mean: Sequence[float], std: Sequence[float], z: float = 2.0) -> float:
    """Fraction of true scores inside mean +- z * std (0.954 for a calibrated Gaussian at z=2)."""
    a, m = _pair(y_true, mean)
    _, s = _pair(y_true, std)
    return float(np.mean(np.abs(a - m) <= z * s)) if a.size else float("nan")


def score_predictions(
    y_true: Sequence[float], mean: Sequence[float], std: Sequence[float] | None = None, k: int | float = 0.1
) -> dict[str, float]:
    """All metrics of `METRICS` for one set of predictions (the std ones only when `std` is given)."""
    out = {
        "kendall_tau": kendall_tau(y_true, mean),
        "spearman": spearman(y_true, mean),
        "precision_at_k": precision_at_k(y_true, mean, k),
        "rmse": rmse(y_true, mean),
    }
    if std is not None:
        out["std_error_spearman"] = std_error_spearman(y_true, mean, std)
        out["coverage"] = coverage(y_true, mean, std)
    return out


def _summary(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    keys = rows[0].keys() if rows else []
    return {k: (float(np.nanmean([r[k] for r in rows])), float(np.nanstd([r[k] for r in rows]))) for k in keys}


@dataclass
class CVResult:
    """Cross-validation of one predictor: per-fold metrics, their mean and std, out-of-fold predictions."""

    predictor: str
    folds: list[dict[str, float]]
    summary: dict[str, tuple[float, float]]  # metric -> (mean over folds, std over folds)
    oof_mean: np.ndarray = field(repr=False)
    oof_std: np.ndarray = field(repr=False)
    pooled: dict[str, float] = field(default_factory=dict)  # metrics of all out-of-fold predictions together

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (no arrays)."""
        return {"predictor": self.predictor, "folds": self.folds,
                "summary": {k: list(v) for k, v in self.summary.items()}, "pooled": self.pooled}


class LowSpreadError(ValueError):
    """The scores cannot be cross-validated: some fold's training subnets all scored the same."""


def cross_validate(
    predictor: Predictor,
    archs: Iterable[Arch | str],
    scores: Sequence[float] | np.ndarray,
    folds: int = 5,
    seed: int = 0,
    k: int | float = 0.1,
) -> CVResult:
    """K-fold cross-validation of fresh copies of `predictor` (it is left untouched); folds are shuffled by `seed`."""
    archs = as_archs(predictor.space, archs)
    y = check_scores(scores, len(archs))
    if not 2 <= folds <= len(y):
        raise ValueError(f"folds must be between 2 and the number of subnets ({len(y)}), got {folds}")
    order = np.random.default_rng(seed).permutation(len(y))
    oof_mean, oof_std = np.zeros(len(y)), np.zeros(len(y))
    rows = []
    for f, test in enumerate(np.array_split(order, folds)):
        train = np.setdiff1d(order, test)
        if np.ptp(y[train]) == 0:  # e.g. 9 subnets at 100% and one at 90%: the fold without it has nothing to rank
            raise LowSpreadError(
                f"cross-validation fold {f + 1} of {folds}: all {len(train)} training scores equal {float(y[train][0])!r}; "
                f"the scores have too little spread for {folds}-fold cross-validation (score more subnets)")
        model = predictor.clone().fit([archs[i] for i in train], y[train])
        mean, std = model.predict([archs[i] for i in test])
        oof_mean[test], oof_std[test] = mean, std
        rows.append(score_predictions(y[test], mean, std, k))
    pooled = score_predictions(y, oof_mean, oof_std, k)
    return CVResult(predictor.name, rows, _summary(rows), oof_mean, oof_std, pooled)


def learning_curve(
    predictor: Predictor,
    archs: Iterable[Arch | str],
    scores: Sequence[float] | np.ndarray,
    sizes: Sequence[int] = (20, 50, 100, 200, 500),
    repeats: int = 3,
    seed: int = 0,
    test_size: int | None = None,
    k: int | float = 0.1,
) -> dict[int, dict[str, tuple[float, float]]]:
    """Metrics on held-out subnets after training on random subsets of each size: size -> metric -> (mean, std).

    Each repeat draws a random test set (`test_size` subnets, default all not used for the largest training
    size) and nested training sets from the rest, so sizes are compared on the same test subnets. Sizes that
    leave no test subnets are skipped.
    """
    archs = as_archs(predictor.space, archs)
    y = check_scores(scores, len(archs))
    sizes = sorted({int(s) for s in sizes if s >= 2})
    n_test = test_size if test_size is not None else len(y) - (max(sizes) if sizes else 0)
    sizes = [s for s in sizes if s + max(n_test, 1) <= len(y)]
    if not sizes or n_test < 2:
        raise ValueError(f"{len(y)} subnets are too few for training sizes {sizes or 'given'} plus a test set")
    rng = np.random.default_rng(seed)
    rows: dict[int, list[dict[str, float]]] = {s: [] for s in sizes}
    for r in range(repeats):
        order = rng.permutation(len(y))
        test, pool = order[:n_test], order[n_test:]
        for s in sizes:
            train = pool[:s]
            if np.ptp(y[train]) == 0:
                continue
            model = predictor.clone(seed=predictor.seed + r).fit([archs[i] for i in train], y[train])
            mean, std = model.predict([archs[i] for i in test])
            rows[s].append(score_predictions(y[test], mean, std, k))
    return {s: _summary(v) for s, v in rows.items() if v}
