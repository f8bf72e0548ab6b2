"""Predictors with zero-cost proxies: models on the encoding, on all columns, on the proxies, the best proxy, stacked.

A predictor given `onehot+zc` should beat both the best single proxy and the same predictor without proxies at
every training size. Which signal is worth more moves with the data: proxies rank networks from the first
subnet on but never improve, an encoding starts from nothing and learns the space. One GP over the
concatenated columns cannot follow that (its single lengthscale weighs a one-hot flip and a proxy difference
alike, and 24+ one-hot columns outvote 3-5 proxy columns); an additive kernel with one amplitude per group
(`a_enc k_enc + a_zc k_zc`, fitted by marginal likelihood) follows it but models the scores as a SUM of a
function of the encoding and a function of the proxies, while a proxy is a noisy measurement of the same
accuracy the encoding predicts; measured, it did worse than one-hot alone at small n (below).

Stacked regression (Breiman 1996, "Stacked regressions") combines instead of sums: every member predicts each
training subnet without having seen it, and non-negative least squares of the scores on those honest
predictions gives the members' weights. The members are
- the GP on the encoding's other columns (`onehot`, `onehot+ordinal`, ...), held-out by closed-form
  leave-one-out (`GPPredictor.held_out_`),
- the one-kernel GP on all columns (proxies as extra coordinates of the encoding: it is the best member where
  the encoding already ranks well and the proxies add a little, e.g. NAS-Bench-Macro at 200 networks),
- a GP on the proxy columns alone (it learns how proxies combine; also closed-form leave-one-out),
- the best proxy alone (highest |Kendall tau| with the training scores, as an engineer would pick it), as the
  normal quantile of its rank (`zc` already gives the rank), oriented by that tau's sign: a proxy is not
  fitted, so its value is already held out.
NNLS is computed in the latent units of the target warp; weights are normalized to sum 1 and the prediction
is the weighted mixture (mean: the weighted mean; variance: that of the mixture, so disagreement between
members widens the std). The proxy alone has a constant std: the RMS of its latent residual on the training set.

Measured (benchmarks/bench_proxies.py docstring, 20 seeds, Kendall tau on held-out networks): on
NAS-Bench-Macro with all eleven proxies (600 networks) the stack beats one-hot alone by +0.042 / +0.008 /
+0.004 / +0.004 at 25 / 50 / 100 / 200 networks (with synflow, params, flops and nwot only: +0.025 at 25, a
tie from 50 on, where those four carry nothing the encoding has not learned); on synthetic NB201-cell
objectives with an informative proxy it beats the best proxy, one-hot and the one-kernel GP at 50-200 and ties
the best proxy at 25. Alternatives measured in development and not kept: the additive group kernel (worse
than one-hot alone at 25-50 networks on macro, worse than the one-kernel GP on the synthetic `cell`
objective), a product of group kernels and a linear proxy kernel (worse than one-hot on macro), stacking with
weights chosen by held-out Kendall tau
on a grid (as `auto` does) or by greedy ensemble selection (equal or worse than NNLS), every proxy alone as a
member (-0.02 tau at 25 networks when one proxy is good and the others are noise), and the one-kernel GP in
place of the encoding GP (-0.01 on the synthetic pairwise objective at 100). As an extra member it changed
nothing there (10 seeds) and moved the stack from -0.001 to +0.002 against one-hot alone on macro at 200.
Cost: three GP fits instead of one (the proxy GP is cheap: few columns); on macro 0.23 s instead of 0.15 s
CPU per fit at 100 networks, 0.60 s instead of 0.19 s at 200 (one thread, mean of 3).

XGBoost (`XGBPredictor`, `proxies="stack"` by default) stacks the same way with two ensembles, on the other
columns and on all columns, plus the best proxy. It has no closed-form leave-one-out; its held-out
predictions are the out-of-fold ones its K-fold ensemble makes anyway (K = `n_models`, 8; the same seed gives
both members the same folds). On NAS-Bench-Macro with all eleven proxies (20 seeds) the stack beats one-hot
alone by +0.083 / +0.031 / +0.006 / +0.002 tau at 25 / 50 / 100 / 200 networks (with nwot and the cheap
proxies: +0.068 and +0.020 at 25 and 50, a tie at 100-200), and beats the one-ensemble `joint` model from 50
on (+0.008 to +0.021; -0.010 at 25), which is itself worse than one-hot alone from 100 on. A third
member on the proxy columns alone added nothing there and lost 0.012-0.017 at 25 on the synthetic pairwise
objective, so `XGBPredictor.stack_keys` leaves it out. The code shared by both predictors (the proxies
option, fitting, weights, files) is the `ProxyStacking` mixin below; a member kind plugs in through
`_stack_member(key, encoding)` and `stack_keys`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import numpy as np

from .encodings import ConcatEncoding, Encoding, SignalEncoding

if TYPE_CHECKING:
    from .base import Predictor

__all__ = ["PROXY_MODES", "ProxyStack", "ProxyStacking", "mixture", "proxy_groups"]

PROXY_MODES = ("stack", "joint")  # a zc part stacked with its own members, or one model over all columns

# A rank quantile of 0 or 1 (the reference set's extremes, or an undefined proxy) would map to an infinite
# normal score; clipping at half a percent keeps it the most extreme value without letting it dominate NNLS.
_Q_CLIP = 0.005


def proxy_groups(encoding: Encoding) -> tuple[Encoding, np.ndarray, SignalEncoding, np.ndarray] | None:
    """(other encoding, its column indices, the signal part, its column indices) of a concatenation with signal
    parts (`zc`, `signals`) and at least one other part; None otherwise (nothing to stack). Several signal parts
    (e.g. `onehot+zc+signals`) form one group, concatenated."""
    if not isinstance(encoding, ConcatEncoding):
        return None
    is_signal = [isinstance(p, SignalEncoding) for p in encoding.parts]
    if not any(is_signal) or all(is_signal):
        return None
    bounds, start = [], 0
    for p in encoding.parts:
        bounds.append(np.arange(start, start + p.dim))
        start += p.dim
    rest = [p for p, z in zip(encoding.parts, is_signal) if not z]
    signal = [p for p, z in zip(encoding.parts, is_signal) if z]
    rest_cols = np.concatenate([b for b, z in zip(bounds, is_signal) if not z])
    signal_cols = np.concatenate([b for b, z in zip(bounds, is_signal) if z])
    other = rest[0] if len(rest) == 1 else ConcatEncoding(encoding.space, rest)
    group = signal[0] if len(signal) == 1 else ConcatEncoding(encoding.space, signal)
    return other, rest_cols, group, signal_cols  # type: ignore[return-value]


def mixture(means: np.ndarray, stds: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the mixture of Gaussians `(means[:, k], stds[:, k])` with `weights[k]` (summing to 1)."""
    mean = means @ weights  # (N,)
    var = (stds**2 + (means - mean[:, None]) ** 2) @ weights
    return mean, np.sqrt(var)


def _normal_scores(q: np.ndarray) -> np.ndarray:
    """Rank quantiles in [0, 1] -> standard normal scores (the latent units the GPs fit)."""
    from scipy.stats import norm  # here, as every scipy import of this module: scipy.stats takes about a second

    return norm.ppf(np.clip(q, _Q_CLIP, 1 - _Q_CLIP))


class ProxyStack:
    """The stacked members of a predictor whose encoding has a `zc` part (see the module docstring).

    `make_member(key, encoding)` builds the unfitted member `key` (one of `keys`: "encoding" for the other
    columns, "joint" for all of them, "zc" for the proxy columns) on `encoding`, the encoding of its columns.
    A member is a `Predictor` whose `_fit(X, z)` on latent targets also sets `held_out_`: its prediction of each
    training subnet from a model that did not see it (NaN where there is none), e.g. a GP's closed-form
    leave-one-out or XGBoost's out-of-fold predictions. `encoding` is the full encoding (one with `proxy_groups`).
    """

    KEYS = ("encoding", "joint", "zc")  # every member there can be, in the order of `weights`

    def __init__(self, make_member: Callable[[str, Encoding], Predictor], encoding: Encoding,
                 keys: Sequence[str] = KEYS) -> None:
        groups = proxy_groups(encoding)
        if groups is None:
            raise ValueError(f"encoding {encoding.name!r} has no zc part beside other parts: nothing to stack")
        if not keys or any(k not in self.KEYS for k in keys):
            raise ValueError(f"stack members must be some of {list(self.KEYS)}, got {list(keys)}")
        self.other, other_cols, self.zc, self.zc_cols = groups
        self.encoding = encoding
        self.keys = tuple(keys)
        self.cols = {"encoding": other_cols, "joint": np.arange(encoding.dim), "zc": self.zc_cols}
        self._parts = {"encoding": self.other, "joint": encoding, "zc": self.zc}
        self.members = {key: make_member(key, self._parts[key]) for key in self.keys}
        self.proxy = 0  # zc column of the best single proxy on the training scores
        self.sign = 1.0  # +1 or -1: the direction it ranks the scores in
        self.proxy_std = 1.0  # its RMS latent residual on the training set
        self.weights = np.eye(len(self.keys) + 1)[0]  # the members of keys, then the best proxy alone
        self.held_out: np.ndarray | None = None

    @property
    def names(self) -> list[str]:
        """One name per weight: the members by their encodings, then `<part>:<signal>` (e.g. `zc:nwot@init`) for
        the best signal alone."""
        best = self.zc.feature_names[self.proxy]  # a concatenation already prefixes its parts' names
        return [*(self._parts[k].name for k in self.keys),
                best if isinstance(self.zc, ConcatEncoding) else f"{self.zc.name}:{best}"]

    def _single(self, X: np.ndarray) -> np.ndarray:
        return _normal_scores(X[:, self.zc_cols[self.proxy]]) * self.sign  # (N,), oriented

    def fit(self, X: np.ndarray, z: np.ndarray) -> ProxyStack:
        """Fit the members on their columns of X and the weights on their held-out predictions of latent z."""
        for key, m in self.members.items():
            m._fit(X[:, self.cols[key]], z)
            m.n_train_ = len(z)
        # Only the best proxy stands alone: each extra member is one more weight fitted on n points, and the
        # proxy member already combines them all (measured: all proxies alone lost 0.02 tau at 25 networks).
        from scipy.optimize import nnls
        from scipy.stats import kendalltau

        raw = _normal_scores(X[:, self.zc_cols])
        with np.errstate(invalid="ignore"):
            taus = np.nan_to_num([kendalltau(z, raw[:, j])[0] if np.ptp(raw[:, j]) > 0 else 0.0
                                  for j in range(raw.shape[1])])
        self.proxy = int(np.argmax(np.abs(taus)))
        self.sign = -1.0 if taus[self.proxy] < 0 else 1.0
        single = self._single(X)
        self.proxy_std = float(max(np.sqrt(((single - z) ** 2).mean()), 1e-3))
        H = np.column_stack([*(m.held_out_ for m in self.members.values()), single])  # (n, members + 1)
        rows = np.isfinite(H).all(axis=1)  # subnets every member has a held-out prediction of
        if rows.sum() > H.shape[1]:
            w = nnls(H[rows], z[rows])[0]
        elif taus[self.proxy] != 0:
            # Fewer held-out subnets than weights (e.g. XGBoost's K folds on fewer than K subnets, or a calibration
            # on 3-4 standalone truths) cannot weigh the members; a model of the encoding on so few subnets knows
            # next to nothing, while the best signal was chosen and oriented by these scores: it alone predicts.
            w = np.eye(H.shape[1])[-1]
        else:
            w = np.zeros(H.shape[1])
        # All-zero weights: no member predicts the scores at all; the encoding member is the predictor without
        # proxies.
        self.weights = w / w.sum() if w.sum() > 0 else np.eye(len(w))[0]
        self.held_out = H @ self.weights  # the weights saw these: slightly optimistic, unlike a member's
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent mean and std of the stacked mixture for encoded subnets X."""
        fits = [m._predict(X[:, self.cols[key]]) for key, m in self.members.items()]
        means = np.column_stack([*(f[0] for f in fits), self._single(X)])  # (N, members + 1)
        stds = np.column_stack([*(f[1] for f in fits), np.full(len(X), self.proxy_std)])
        return mixture(means, stds, self.weights)

    def state(self) -> dict[str, Any]:
        """Numbers, arrays and bytes only (a predictor file loads without pickle)."""
        return {"members": {k: m._state() for k, m in self.members.items()}, "proxy": self.proxy,
                "sign": self.sign, "proxy_std": self.proxy_std, "weights": self.weights, "held_out": self.held_out}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore `state()`."""
        if sorted(state["members"]) != sorted(self.keys):
            raise ValueError(f"the saved proxy stack has members {sorted(state['members'])}, this version builds "
                             f"{sorted(self.keys)}")
        for k, m in self.members.items():
            m._set_state(state["members"][k])
        self.proxy, self.sign, self.proxy_std = int(state["proxy"]), float(state["sign"]), float(state["proxy_std"])
        self.weights = np.asarray(state["weights"], dtype=float)
        if not 0 <= self.proxy < len(self.zc_cols) or self.weights.shape != (1 + len(self.keys),):
            raise ValueError(f"the saved proxy stack (proxy column {self.proxy}, {self.weights.shape} weights) does "
                             f"not match this encoding's {len(self.zc_cols)} proxies")
        self.held_out = None if state["held_out"] is None else np.asarray(state["held_out"], dtype=float)


class ProxyStacking:
    """Mixin for a `Predictor` that stacks members of its own kind when its encoding has a `zc` part.

    The subclass calls `_init_proxies(proxies)` in its constructor, builds members in `_stack_member(key,
    encoding)`, and, when `stack_` is set, hands `_fit`, `_predict`, `_state` and `_set_state` to the stack via
    `_fit_stack`, `stack_.predict`, `_with_stack` and `_load_stack`.
    """

    stack_keys: tuple[str, ...] = ProxyStack.KEYS  # the members this predictor stacks
    # provided by Predictor and the subclass:
    name: ClassVar[str]
    encoding: Encoding
    hparams: dict[str, Any]
    held_out_: np.ndarray | None
    _check_fitted: Callable[[str], None]

    def _init_proxies(self, proxies: str) -> None:
        if proxies not in PROXY_MODES:
            raise ValueError(f"unknown {self.name.upper()} proxies mode {proxies!r}; choose from {list(PROXY_MODES)}")
        self._stacked = proxies == "stack" and proxy_groups(self.encoding) is not None
        self.stack_: ProxyStack | None = None  # fitted when the encoding has proxies to stack

    def _stack_member(self, key: str, encoding: Encoding) -> Predictor:
        """The unfitted member `key` of the stack on `encoding` (its `proxies` must be "joint")."""
        raise NotImplementedError

    def _new_stack(self) -> ProxyStack:
        return ProxyStack(self._stack_member, self.encoding, self.stack_keys)

    def _fit_stack(self, X: np.ndarray, z: np.ndarray) -> bool:
        """Fit the stack on encoded X and latent z if this predictor stacks; False if it does not."""
        if not self._stacked:
            return False
        self.stack_ = self._new_stack().fit(X, z)
        self.held_out_ = self.stack_.held_out
        return True

    @property
    def members_(self) -> dict[str, Predictor]:
        """A stack's fitted members, by `stack_keys` ("encoding": other columns, "joint": all, "zc": proxies)."""
        self._check_fitted("members_")
        if self.stack_ is None:
            raise ValueError(f"this {self.name.upper()} has no members: its encoding has no zc part to stack "
                             "(or proxies='joint')")
        return dict(self.stack_.members)

    @property
    def weights_(self) -> dict[str, float]:
        """How much each member counts in a stack (sums to 1): members by encoding, then the best proxy alone."""
        self._check_fitted("weights_")
        if self.stack_ is None:
            return {self.encoding.name: 1.0}
        return {n: float(w) for n, w in zip(self.stack_.names, self.stack_.weights)}

    def _with_stack(self, state: dict[str, Any]) -> dict[str, Any]:
        """`state` (the base predictor's) plus the stack's."""
        return {**state, "stack": self.stack_.state()}  # type: ignore[union-attr]

    def _load_stack(self, state: dict[str, Any]) -> bool:
        """Restore a saved stack; False for a one-model state (then proxies are "joint", as when it was saved)."""
        if "stack" in state:
            if not self._stacked:
                raise ValueError(f"the saved {self.name.upper()} is a proxy stack, but its encoding has no zc "
                                 "part to stack (or proxies='joint')")
            self.stack_ = self._new_stack()
            self.stack_.set_state(state["stack"])
            self.held_out_ = self.stack_.held_out
            return True
        if self._stacked:  # saved before stacking existed: one model over all columns
            self._stacked, self.hparams["proxies"] = False, "joint"
        return False
