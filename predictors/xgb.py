"""Gradient-boosted trees (xgboost) with an uncertainty estimate from an ensemble over data splits and seeds.

`n_models` boosters are trained, each with its own seed, by default on K-fold complements of the training set
(member m does not see fold m, so every training subnet is held out by exactly one member); the mean is their
average and the spread their standard deviation. The spread alone is too narrow (members share most of their
data), so it is rescaled so that the mean ensemble variance equals the mean squared error of the held-out
members on the points they did not see. K-fold splits beat bootstrap resamples here: each member sees 1 - 1/K
of the distinct subnets instead of 63%, which was worth +0.03 to +0.06 Kendall tau at 100 training subnets
on the synthetic functions (`benchmarks/bench_predictors.py --models xgb --set resample=bootstrap`).

Defaults are for 20-2000 training subnets: shallow trees (depth 2 below 300 subnets, 3 below 1000, else 4),
learning rate 0.1 for 300 rounds, half the columns per tree. Measured during development on the synthetic
functions: depth 5 loses 0.02-0.1 tau at 100 subnets, and depth 2 loses ~0.03 against depth 3-4 at 500-2000.

With zero-cost proxies in the encoding (`onehot+zc`, ...), the ensemble is by default a stack
(`proxies="stack"`, see `predictors.stacking`): an ensemble on the other columns, one on all columns and the
best proxy alone, weighted by non-negative least squares on their held-out predictions. Those are the K-fold
out-of-fold predictions the ensemble makes anyway (K = `n_models`, 8: each booster sees 7/8 of the subnets,
nearer the whole-data model than 5 folds' 4/5 when there are 25, and no booster is trained for the weights
alone). `proxies="joint"` is one ensemble over all columns (the behaviour before stacking; files saved then
load as such).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from supernets.space import SearchSpace

from .base import Predictor, register_predictor
from .encodings import Encoding
from .stacking import ProxyStacking

__all__ = ["XGBPredictor"]

RESAMPLE = ("kfold", "bootstrap", "none")


def auto_depth(n: int) -> int:
    """Tree depth for `n` training subnets when `max_depth` is None."""
    return 2 if n < 300 else 3 if n < 1000 else 4


@register_predictor
class XGBPredictor(ProxyStacking, Predictor):
    """Ensemble of xgboost regressors with a calibrated spread.

    `n_models`: ensemble members; `resample`: how members' training rows differ ("kfold": all but one fold,
    "bootstrap": resampled with replacement, "none": only the seed differs, std then uncalibrated);
    `n_rounds`: boosting rounds per member; `max_depth`: tree depth, None to pick by training-set size;
    `learning_rate`, `min_child_weight`, `subsample`, `colsample_bytree`, `reg_lambda`: xgboost's parameters;
    `n_jobs`: xgboost threads; `proxies`: with a `zc` part in the encoding, "stack" (XGBoost per feature
    group and the best proxy, weighted on their out-of-fold predictions) or "joint" (one ensemble over all
    columns).
    """

    name = "xgb"
    default_encoding = "onehot+ordinal"
    # No ensemble on the proxy columns alone: with a few columns it adds a weight but nothing the best proxy
    # does not (measured, 6 seeds: -0.012 tau at 25 networks on the synthetic pairwise objective, equal elsewhere).
    stack_keys = ("encoding", "joint")

    def __init__(
        self,
        space: SearchSpace,
        encoding: str | None = None,
        seed: int = 0,
        target_transform: str = "rank",
        n_models: int = 8,
        resample: str = "kfold",
        n_rounds: int = 300,
        max_depth: int | None = None,
        learning_rate: float = 0.1,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        reg_lambda: float = 1.0,
        n_jobs: int = 1,
        proxies: str = "stack",
    ) -> None:
        super().__init__(space, encoding, seed, target_transform)
        if resample not in RESAMPLE:
            raise ValueError(f"unknown resample {resample!r}; choose from {list(RESAMPLE)}")
        if n_models < 2:
            raise ValueError(f"n_models must be at least 2 for an uncertainty estimate, got {n_models}")
        self._init_proxies(proxies)
        if self._stacked and resample == "none":
            raise ValueError("proxies='stack' weighs members by their held-out predictions, which resample='none' "
                             "does not give: use resample='kfold' (or 'bootstrap'), or proxies='joint'")
        self.hparams = dict(
            n_models=int(n_models), resample=str(resample), n_rounds=int(n_rounds),
            max_depth=None if max_depth is None else int(max_depth), learning_rate=float(learning_rate),
            min_child_weight=float(min_child_weight), subsample=float(subsample),
            colsample_bytree=float(colsample_bytree), reg_lambda=float(reg_lambda), n_jobs=int(n_jobs),
            proxies=proxies,
        )
        self._boosters: list[Any] = []
        self.std_scale_ = 1.0
        self.held_out_: np.ndarray | None = None  # latent prediction of each training subnet by members not seeing it

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), **self.hparams}

    def _xgb_params(self, seed: int, n: int) -> dict[str, Any]:
        h = self.hparams
        return {
            "objective": "reg:squarederror", "tree_method": "hist", "eta": h["learning_rate"],
            "max_depth": h["max_depth"] if h["max_depth"] is not None else auto_depth(n),
            "min_child_weight": h["min_child_weight"], "subsample": h["subsample"],
            "colsample_bytree": h["colsample_bytree"], "lambda": h["reg_lambda"], "nthread": h["n_jobs"],
            "seed": seed, "verbosity": 0,
        }

    def _stack_member(self, key: str, encoding: Encoding) -> XGBPredictor:
        # Members fit latent targets directly (the warp is this predictor's) and are plain ensembles; the same
        # seed gives every member the same folds, so their out-of-fold predictions are of the same splits.
        return XGBPredictor(self.space, encoding=encoding, seed=self.seed, **{**self.hparams, "proxies": "joint"})

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        import xgboost as xgb

        if self._fit_stack(X, y):
            return
        rng = np.random.default_rng(self.seed)
        n, h = len(y), self.hparams
        in_bag = np.ones((h["n_models"], n), dtype=bool)  # (members, subnets): which member trains on which
        draws: list[np.ndarray] = []
        for m in range(h["n_models"]):
            draws.append(rng.integers(n, size=n) if h["resample"] == "bootstrap" else np.arange(n))
        if h["resample"] == "bootstrap":
            in_bag[:] = False
            for m, rows in enumerate(draws):
                in_bag[m, rows] = True
        elif h["resample"] == "kfold" and n >= h["n_models"]:
            for m, held in enumerate(np.array_split(rng.permutation(n), h["n_models"])):
                in_bag[m, held] = False
                draws[m] = np.flatnonzero(in_bag[m])
        self._boosters = []
        for rows in draws:
            dtrain = xgb.DMatrix(X[rows], label=y[rows], nthread=h["n_jobs"])
            params = self._xgb_params(int(rng.integers(2**31 - 1)), n)
            self._boosters.append(xgb.train(params, dtrain, num_boost_round=h["n_rounds"]))
        self.std_scale_ = self._held_out_scale(X, y, in_bag)

    def _member_predictions(self, X: np.ndarray) -> np.ndarray:
        return np.stack([b.inplace_predict(X) for b in self._boosters]).astype(float)  # (members, N)

    def _held_out_scale(self, X: np.ndarray, y: np.ndarray, in_bag: np.ndarray) -> float:
        """Factor on the ensemble std so the mean ensemble variance matches the mean held-out squared error.

        Held-out predictions come from the members that did not see a point; they are a little worse than the
        whole ensemble's, so the std errs on the wide side. Without held-out points the factor stays 1.
        """
        out = ~in_bag
        usable = out.any(0)
        preds = self._member_predictions(X)
        self.held_out_ = np.full(len(y), np.nan)
        self.held_out_[usable] = np.nanmean(np.where(out, preds, np.nan)[:, usable], axis=0)
        if usable.sum() < 5:
            return 1.0
        err2 = (self.held_out_[usable] - y[usable]) ** 2
        var = preds[:, usable].var(axis=0, ddof=1)
        return float(np.clip(np.sqrt(err2.mean() / max(var.mean(), 1e-12)), 1.0, 100.0))

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.stack_ is not None:
            return self.stack_.predict(X)
        preds = self._member_predictions(X)
        std = preds.std(axis=0, ddof=1) * self.std_scale_
        return preds.mean(axis=0), np.maximum(std, 1e-6)

    def _state(self) -> dict[str, Any]:
        # Boosters travel in xgboost's own binary format, which later xgboost versions still read.
        if self.stack_ is not None:
            return self._with_stack(super()._state())
        return {**super()._state(), "boosters": [bytes(b.save_raw("ubj")) for b in self._boosters],
                "std_scale": self.std_scale_, "held_out": self.held_out_}

    def _set_state(self, state: dict[str, Any]) -> None:
        import xgboost as xgb

        super()._set_state(state)
        if self._load_stack(state):
            return
        self.std_scale_ = float(state["std_scale"])
        self.held_out_ = None if state["held_out"] is None else np.asarray(state["held_out"], dtype=float)
        self._boosters = []
        for blob in state["boosters"]:
            booster = xgb.Booster(params={"nthread": self.hparams["n_jobs"]})
            try:
                booster.load_model(bytearray(blob))
            except xgb.core.XGBoostError as exc:
                raise ValueError(f"a saved xgboost booster does not load: {str(exc).splitlines()[0]}") from None
            self._boosters.append(booster)
