"""Latency of a subnet on one device: structured regressors, one chosen per device by cross-validation.

Latency is mostly a sum over the layers a subnet actually runs (Once-for-All's lookup tables, nn-Meter's kernel
predictors), plus device effects: on some hardware time follows FLOPs, on others per-op overheads dominate, some
compilers drop dead branches, small layers saturate. No single model fits every device, so `LatencyRegressor`
fits several on the measured subnets and keeps the one with the best cross-validated ranking.

Feature blocks (encodings derived from the space; `LatencyPredictor` concatenates those that apply):
- `onehot`: one column per (decision, choice): a per-position term (one lookup-table entry per layer and choice).
- `opcount`: for each kind of decision (same name once digits are dropped, same choices, e.g. the six nb201
  edges or every block kernel of mbv3), how many take each choice: the per-op cost when an op costs the same
  wherever it sits. Ridge then treats `onehot` as per-position deviations from it, which 60 timings can afford.
- `liveops` (cell spaces whose decisions are DAG edges `to<-from`): the same counts over edges on an
  input-to-output path without `none` (compilers that remove dead code run only those), and the element-wise
  adds that join a node's inputs, over all edges and over live ones.
- `lincost`: MACs and params, linear, 0 at the smallest subnet and 1 at the largest; `cost` is their logs.

Candidates, each a ridge regression with one penalty per block (penalties chosen by closed-form leave-one-out
inside every fit): `cost` (MACs and params only: the FLOPs baseline), `additive` (per-op terms, ms), `additive_log`
(per-op terms on log latency, i.e. multiplicative), `additive+cost` and `additive+cost_log` (plus MACs and
params), and `+gp`: the best of those plus a Gaussian process on its residuals (floors, scaling, cliffs).
The choice is by repeated K-fold on the measured subnets: highest pooled Kendall tau, and among candidates
within `tau_tolerance` of it the lowest median relative error; the GP residual only where it clearly helps
(higher tau by more than the tolerance, or a tenth less error than its linear base). The std is the
leave-one-out residual scale of the chosen model (grown with leverage), or the GP's predictive std for `+gp`.
"""

from __future__ import annotations

import re
import warnings
from functools import cached_property
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from supernets.space import Arch, SearchSpace

from .base import Predictor, register_predictor
from .encodings import INACTIVE, CostEncoding, Encoding, PathEncoding, register_encoding

__all__ = ["LatencyRegressor", "LatencyPredictor", "OpCountEncoding", "LiveOpsEncoding", "LinearCostEncoding",
           "CANDIDATES"]


# --------------------------------------------------------------------------- structural encodings
def _kind(name: str) -> str:
    return re.sub(r"\d+", "#", name)


@register_encoding
class OpCountEncoding(Encoding):
    """Per kind of decision (digits dropped from the name, same choices): how many active ones take each choice."""

    name = "opcount"

    @cached_property
    def _columns(self) -> dict[tuple[str, object], int]:
        cols: dict[tuple[str, object], int] = {}
        for d in self.space.decisions:
            for c in d.choices:
                cols.setdefault((f"{_kind(d.name)}{d.choices}", c), len(cols))
        return cols

    @cached_property
    def _kinds(self) -> dict[str, str]:
        return {d.name: f"{_kind(d.name)}{d.choices}" for d in self.space.decisions}

    @cached_property
    def feature_names(self) -> list[str]:
        return [f"{k}={c}" for k, c in self._columns]

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        for name, value in arch.values:
            row[self._columns[(self._kinds[name], value)]] += 1.0


@register_encoding
class LiveOpsEncoding(Encoding):
    """Op counts over DAG edges that lie on an input-to-output path with no `none` (what dead-code removal keeps)."""

    name = "liveops"

    @classmethod
    def supports(cls, space: SearchSpace) -> bool:
        return PathEncoding.supports(space)

    @cached_property
    def _edges(self) -> list[tuple[str, int, int]]:
        return [(d.name, *(int(x) for x in d.name.split("<-"))) for d in self.space.decisions]

    @cached_property
    def ops(self) -> tuple[object, ...]:
        return PathEncoding(self.space).ops

    @cached_property
    def feature_names(self) -> list[str]:
        return [f"live:{op}" for op in self.ops] + ["adds", "live:adds"]

    def _fill(self, arch: Arch, row: np.ndarray) -> None:
        edges = [(name, to, frm) for name, to, frm in self._edges if arch[name] != PathEncoding.NONE]
        out = max(max(to, frm) for _, to, frm in self._edges)
        reach, back = {0}, {out}
        for _ in range(out):  # nodes reachable from the input, and nodes reaching the output, by fixed point
            reach |= {to for _, to, frm in edges if frm in reach}
            back |= {frm for _, to, frm in edges if to in back}
        index = {op: i for i, op in enumerate(self.ops)}
        inputs, live_inputs = np.zeros(out + 1), np.zeros(out + 1)
        for name, to, frm in edges:
            inputs[to] += 1
            if frm in reach and to in back:
                row[index[arch[name]]] += 1.0
                live_inputs[to] += 1
        # A node summing m inputs runs m - 1 element-wise adds: kernels of their own on launch-bound devices.
        row[-2:] = np.maximum(inputs - 1, 0).sum(), np.maximum(live_inputs - 1, 0).sum()


@register_encoding
class LinearCostEncoding(CostEncoding):
    """MACs and params (linear, not logs), 0 at the smallest subnet and 1 at the largest: time grows with work."""

    name = "lincost"

    @cached_property
    def _cost(self):  # type: ignore[override]
        from supernets.cost import cost  # the family's formula, memoized (shared with the budget's cost model)

        def lin(arch: Arch) -> tuple[float, float]:
            c = cost(arch)
            return float(c.macs), float(c.params)

        return lin

    @cached_property
    def feature_names(self) -> list[str]:
        return ["macs", "params"]


# --------------------------------------------------------------------------- the regressor on numpy features
# name -> (feature blocks, target scale). Blocks missing from the features are skipped; a candidate left with
# no block at all is dropped (e.g. `cost` on a space without a cost model).
CANDIDATES: dict[str, tuple[tuple[str, ...], str]] = {
    "cost": (("lincost",), "ms"),
    "additive": (("opcount", "onehot", "liveops"), "ms"),
    "additive_log": (("opcount", "onehot", "liveops"), "log"),
    "additive+cost": (("opcount", "onehot", "liveops", "lincost"), "ms"),
    "additive+cost_log": (("opcount", "onehot", "liveops", "cost"), "log"),
}
_ALPHAS = np.logspace(-3, 3, 13)  # ridge strength on standardized targets
_DEVIATION = (1.0, 10.0, 100.0)  # extra penalty on per-position terms (onehot) relative to per-op counts
_FREE = 1e-3  # relative penalty on cost columns: a trend every device has, nearly unpenalized


def _ridge_path(X: np.ndarray, y: np.ndarray, rel: np.ndarray, alphas: np.ndarray):
    """Ridge with an unpenalized intercept and penalty `alpha * rel` per column, for every alpha from one SVD.

    Yields (alpha, weights, intercept, leave-one-out residuals); LOO is closed form: r_i / (1 - h_ii).
    """
    scale = 1.0 / np.sqrt(rel)
    xm, ym = X.mean(0), float(y.mean())
    U, sv, Vt = np.linalg.svd((X - xm) * scale, full_matrices=False)  # (n, r), (r,), (r, p)
    uy = U.T @ (y - ym)
    for alpha in alphas:
        shrink = sv**2 / (sv**2 + alpha)
        w = scale * (Vt.T @ (sv / (sv**2 + alpha) * uy))
        resid = y - ym - U @ (shrink * uy)
        hat = 1.0 / len(y) + (U**2) @ shrink  # leverage of each training point
        yield alpha, w, ym - float(xm @ w), resid / np.maximum(1.0 - hat, 1e-6), (scale, Vt, sv)


class _Linear:
    """One candidate: block-penalized ridge on ms or log-ms, penalties chosen by closed-form leave-one-out."""

    def __init__(self, cols: dict[str, np.ndarray], scale: str) -> None:
        self.cols, self.scale = cols, scale

    def _target(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.scale == "log" else y

    def _design(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([X[:, c] for c in self.cols.values()], axis=1)

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Linear:
        t = self._target(y)
        self.t_mean, self.t_std = float(t.mean()), float(t.std()) or 1.0
        z = (t - self.t_mean) / self.t_std
        Xs = self._design(X)
        best = None
        for kappa in _DEVIATION if "onehot" in self.cols else _DEVIATION[:1]:
            rel = np.concatenate([np.full(len(c), kappa if b == "onehot" else _FREE if "cost" in b else 1.0)
                                  for b, c in self.cols.items()])
            for alpha, w, b, loo, svd in _ridge_path(Xs, z, rel, _ALPHAS):
                score = float(np.mean(loo**2))
                if best is None or score < best[0]:
                    best = (score, w, b, alpha, svd)
        score, self.w, self.b, self.alpha, (self.col_scale, self.Vt, self.sv) = best  # type: ignore[misc]
        self.x_mean = Xs.mean(0)
        self.sigma = float(np.sqrt(score))  # held-out residual scale, standardized units
        return self

    def latent(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std in standardized target units (std grows with leverage, i.e. away from the data)."""
        Xs = self._design(X)
        xc = (Xs - self.x_mean) * self.col_scale  # the coordinates the penalty is isotropic in
        proj = xc @ self.Vt.T  # (n, r)
        a = self.alpha
        lev = (proj**2 / (self.sv**2 + a)).sum(1) + np.maximum((xc**2).sum(1) - (proj**2).sum(1), 0.0) / a
        return Xs @ self.w + self.b, self.sigma * np.sqrt(1.0 + lev)

    def _back(self, z: np.ndarray) -> np.ndarray:
        t = z * self.t_std + self.t_mean
        return np.exp(t) if self.scale == "log" else t

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, s = self.latent(X)
        lo, mid, hi = self._back(mu - s), self._back(mu), self._back(mu + s)
        return mid, np.maximum((hi - lo) / 2, 1e-12)


class _GPResidual:
    """A linear candidate plus a GP on its residuals over (its own prediction, MACs, params).

    Device effects that are not additive are mostly smooth in how much work a subnet does (a latency floor,
    multi-core speed-up that grows with size, throttling on long runs, a cache cliff in parameters); a GP over
    those three inputs with one lengthscale each learns them from 60 subnets, where one over every one-hot column
    could not. The GP's std (noise included) is the model's uncertainty.
    """

    def __init__(self, base: _Linear, cols: np.ndarray, seed: int) -> None:
        self.base, self.cols, self.seed = base, cols, seed

    def _inputs(self, X: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return np.column_stack([mu, X[:, self.cols]])  # (n, 1 + len(cols)), all roughly in [-2, 2]

    def fit(self, X: np.ndarray, y: np.ndarray) -> _GPResidual:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        self.base.fit(X, y)
        t = (self.base._target(y) - self.base.t_mean) / self.base.t_std
        mu = self.base.latent(X)[0]
        dims = 1 + len(self.cols)
        kernel = (ConstantKernel(0.1, (1e-4, 10.0)) * RBF(np.ones(dims), (0.05, 1e3))
                  + WhiteKernel(0.05, (1e-6, 1.0)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a bound reached is a fit, not a user problem
            self.gp = GaussianProcessRegressor(kernel, alpha=1e-8, normalize_y=False, random_state=self.seed,
                                               n_restarts_optimizer=0).fit(self._inputs(X, mu), t - mu)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, _ = self.base.latent(X)
        r, s = self.gp.predict(self._inputs(X, mu), return_std=True)
        z = mu + r
        lo, mid, hi = self.base._back(z - s), self.base._back(z), self.base._back(z + s)
        return mid, np.maximum((hi - lo) / 2, 1e-12)


class LatencyRegressor:
    """Latency in ms from feature blocks; fits every applicable candidate and keeps the best by repeated K-fold.

    `blocks`: block name -> column indices into X (names as in `CANDIDATES`: onehot, opcount, liveops,
    lincost, cost); `candidates`: names to consider (`+gp` adds the best linear one plus a GP on its residuals);
    `folds` x `repeats`: the cross-validation that chooses; `tau_tolerance`: candidates this close to the best
    Kendall tau are compared on median relative error instead.
    """

    def __init__(self, blocks: dict[str, Sequence[int]], candidates: Sequence[str] = (*CANDIDATES, "+gp"),
                 folds: int = 5, repeats: int = 2, tau_tolerance: float = 0.01, seed: int = 0) -> None:
        unknown = [c for c in candidates if c not in CANDIDATES and c != "+gp"]
        if unknown:
            raise ValueError(f"unknown latency candidate(s) {unknown}; choose from {[*CANDIDATES, '+gp']}")
        self.blocks = {k: np.asarray(v, int) for k, v in blocks.items() if len(v)}
        self.candidates = list(candidates)
        self.folds, self.repeats, self.tau_tolerance, self.seed = folds, repeats, tau_tolerance, seed
        self.cv_: dict[str, dict[str, float]] = {}
        self.oof_: dict[str, np.ndarray] = {}
        self.chosen_: str | None = None

    def _make(self, name: str, base: str | None = None) -> _Linear | _GPResidual:
        if name == "+gp":
            gp_cols = self.blocks.get("lincost", np.zeros(0, int))
            return _GPResidual(self._make(base), gp_cols, self.seed)  # type: ignore[arg-type]
        want, scale = CANDIDATES[name]
        return _Linear({b: self.blocks[b] for b in want if b in self.blocks}, scale)

    def _usable(self) -> list[str]:
        return [c for c in self.candidates if c != "+gp" and any(b in self.blocks for b in CANDIDATES[c][0])]

    def _oof(self, name: str, X: np.ndarray, y: np.ndarray, base: str | None) -> dict[str, float]:
        from scipy.stats import kendalltau

        n, k = len(y), min(self.folds, len(y))
        taus, errs, preds = [], [], np.zeros((self.repeats, n))
        for r in range(self.repeats):
            order = np.random.default_rng(self.seed + r).permutation(n)
            for test in np.array_split(order, k):
                train = np.setdiff1d(order, test)
                preds[r, test] = self._make(name, base).fit(X[train], y[train]).predict(X[test])[0]
            tau = kendalltau(y, preds[r])[0]
            taus.append(float(tau) if np.isfinite(tau) else -1.0)
            errs.append(float(np.median(np.abs(preds[r] / y - 1))))
        self.oof_[name] = preds[0]  # out-of-fold predictions of the first repetition
        return {"kendall_tau": float(np.mean(taus)), "median_rel_error": float(np.mean(errs))}

    def fit(self, X: np.ndarray, y: np.ndarray) -> LatencyRegressor:
        """Choose a candidate by cross-validation on (X, y ms > 0), then fit it on all rows."""
        with threadpool_limits(1):  # tiny matrices: BLAS threads only contend (25x slower on a busy 2-core box)
            return self._fit(np.asarray(X, float), np.asarray(y, float))

    def _fit(self, X: np.ndarray, y: np.ndarray) -> LatencyRegressor:
        if np.any(y <= 0):
            raise ValueError("latencies must be positive milliseconds")
        names = self._usable()
        if not names:
            raise ValueError(f"no latency candidate applies to feature blocks {sorted(self.blocks)}")
        self.cv_ = {c: self._oof(c, X, y, None) for c in names}
        eligible = dict(self.cv_)
        if "+gp" in self.candidates:
            self.gp_base_ = self._pick(self.cv_)
            self.cv_["+gp"] = gp = self._oof("+gp", X, y, self.gp_base_)
            base = self.cv_[self.gp_base_]
            # The residual GP must earn its place: a clearly better ranking or a clearly smaller error.
            if gp["kendall_tau"] > base["kendall_tau"] + self.tau_tolerance or \
                    gp["median_rel_error"] < 0.9 * base["median_rel_error"]:
                eligible["+gp"] = gp
        self.chosen_ = self._pick(eligible)
        self.model_ = self._make(self.chosen_, getattr(self, "gp_base_", None)).fit(X, y)
        return self

    def _pick(self, cv: dict[str, dict[str, float]]) -> str:
        best = max(v["kendall_tau"] for v in cv.values())
        near = [c for c, v in cv.items() if v["kendall_tau"] >= best - self.tau_tolerance]
        return min(near, key=lambda c: cv[c]["median_rel_error"])

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ms and its std per row."""
        if self.chosen_ is None:
            raise RuntimeError("LatencyRegressor is not fitted: call fit(X, y) first")
        with threadpool_limits(1):
            return self.model_.predict(np.asarray(X, float))

    @property
    def name(self) -> str:
        """The chosen candidate, e.g. `additive+cost` or `+gp(additive)`."""
        return f"+gp({self.gp_base_})" if self.chosen_ == "+gp" else str(self.chosen_)


# --------------------------------------------------------------------------- predictor glue
@register_predictor
class LatencyPredictor(Predictor):
    """`LatencyRegressor` behind the predictor protocol: fit on subnets and their measured ms, predict ms and std.

    Latencies (ms, > 0) are modelled in ms or log ms per candidate, never rank-warped: the structure is additive
    in time. `candidates`, `folds`, `repeats`: see `LatencyRegressor`.
    """

    name = "latency"
    default_encoding = "onehot+opcount+liveops+lincost+cost"

    def __init__(self, space: SearchSpace, encoding: str | None = None, seed: int = 0,
                 target_transform: str = "standard", candidates: Sequence[str] = (*CANDIDATES, "+gp"),
                 folds: int = 5, repeats: int = 2) -> None:
        if target_transform != "standard":
            raise ValueError("the latency predictor models milliseconds itself: target_transform must be 'standard'")
        super().__init__(space, encoding, seed, target_transform)
        self.hparams = dict(candidates=list(candidates), folds=int(folds), repeats=int(repeats))
        self.regressor_: LatencyRegressor | None = None

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), **self.hparams}

    @cached_property
    def _blocks(self) -> dict[str, list[int]]:
        parts = getattr(self.encoding, "parts", [self.encoding])
        out, start = {}, 0
        for p in parts:
            out[p.name] = list(range(start, start + p.dim))
            start += p.dim
        return out

    def _without_inactive(self, X: np.ndarray) -> np.ndarray:
        onehot = self._blocks.get("onehot")
        if onehot:  # a removed block costs nothing: its `<inactive>` column carries no term of its own
            names = [self.encoding.feature_names[i] for i in onehot]
            X = X.copy()
            X[:, [i for i, n in zip(onehot, names) if n.endswith(f"={INACTIVE}")]] = 0.0
        return X

    # The base class standardizes scores ((y - mean) / std, an affine map); the candidates need milliseconds, so
    # `_fit` undoes it and `_predict` answers in the same standardized units, which the base maps back.
    def _fit(self, X: np.ndarray, z: np.ndarray) -> None:
        warp, h = self._warp, self.hparams
        y = z * warp.std + warp.mean  # type: ignore[union-attr]
        self.regressor_ = LatencyRegressor(self._blocks, h["candidates"], h["folds"], h["repeats"], seed=self.seed)
        self.regressor_.fit(self._without_inactive(X), y)
        self._train = (X, z)  # the file keeps the data, not the fitted objects

    # The model choice, the ridge terms and the GP residual are all seeded functions of the training data, so a
    # file stores that data and loading refits it: the same predictions, and nothing in the file is executable.
    def _state(self) -> dict[str, Any]:
        X, z = self._train
        return {**super()._state(), "X": X, "z": z}

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self._fit(np.asarray(state["X"], dtype=float), np.asarray(state["z"], dtype=float))

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        warp = self._warp
        mean, std = self.regressor_.predict(self._without_inactive(X))  # type: ignore[union-attr]
        return (mean - warp.mean) / warp.std, std / warp.std  # type: ignore[union-attr]
