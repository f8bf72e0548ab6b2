"""One call for pipelines: cross-validate several predictors on the same subnets, then fit each on all of them."""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from supernets.space import Arch, SearchSpace

from .base import as_archs, check_scores, create_predictor
from .encodings import ConcatEncoding, ProxySource, get_encoding
from .metrics import cross_validate

__all__ = ["fit_predictors"]


def fit_predictors(
    space: SearchSpace,
    archs: Iterable[Arch | str],
    scores: Sequence[float] | np.ndarray,
    models: Sequence[str] = ("xgb", "gp"),
    folds: int = 5,
    seed: int = 0,
    k: int | float = 0.1,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    proxies: ProxySource | None = None,
) -> dict[str, Any]:
    """Cross-validate and fit each predictor in `models` on (`archs`, `scores`).

    `folds`: K of the cross-validation (0 skips it; it is lowered to the number of subnets when there are
    fewer); `seed`: seeds the fold split and every predictor; `k`: the top-k of `precision_at_k` (count, or
    fraction below 1); `options`: per-model constructor arguments, e.g. `{"xgb": {"n_models": 5}}`;
    `proxies`: a source of zero-cost proxy scores (e.g. oneshot's `ProxyLookup` on a proxy table): every model
    whose options name no encoding then uses its default encoding plus `zc`, one shared proxy reference.

    Returns `{"predictors": {name: fitted predictor}, "cv": {name: CVResult or None}, "best": name with the
    highest mean CV Kendall tau (the first model without CV), "seconds": {name: fit + CV wall time}}`.
    """
    archs = as_archs(space, archs)
    y = check_scores(scores, len(archs))
    options = dict(options or {})
    folds = min(folds, len(y))
    out: dict[str, Any] = {"predictors": {}, "cv": {}, "best": None, "seconds": {}}
    best_tau = -math.inf
    zc = get_encoding("zc", space, proxies=proxies) if proxies is not None else None
    for name in models:
        start = time.perf_counter()
        opts = dict(options.get(name, {}))
        if zc is not None and "encoding" not in opts:
            default = create_predictor(name, space).encoding
            opts["encoding"] = ConcatEncoding(space, [default, zc])
        proto = create_predictor(name, space, seed=seed, **opts)
        cv = cross_validate(proto, archs, y, folds=folds, seed=seed, k=k) if folds >= 2 else None
        out["predictors"][name] = proto.clone().fit(archs, y)
        out["cv"][name] = cv
        out["seconds"][name] = time.perf_counter() - start
        tau = cv.summary["kendall_tau"][0] if cv is not None else -math.inf
        if out["best"] is None or (np.isfinite(tau) and tau > best_tau):
            out["best"], best_tau = name, tau if np.isfinite(tau) else best_tau
    return out
