"""Gaussian-process regression (scikit-learn) with a kernel for categorical encodings and calibrated std.

On a one-hot encoding the squared distance between two subnets is twice the number of decisions in which they
differ, so an RBF there is an exponentiated Hamming kernel: subnets that share more choices are more alike,
whatever the choices are called. With a long lengthscale it is nearly additive (one effect per decision and
choice, the structure that dominates NAS spaces); a shorter one adds interactions. The ordinal columns add the
cheap-to-costly trend of each decision. Kernel: `amplitude * RBF(lengthscale) + White(noise)`, all fitted by
maximum marginal likelihood on standardized (by default rank-Gaussianized) targets. The lengthscale is kept
at or above 1 (neighbours one decision apart correlate at least exp(-1)): below that, marginal likelihood on
20 subnets sometimes prefers a kernel that memorizes the training set and predicts a constant elsewhere.

Measured alternatives (100 training subnets, synthetic functions of benchmarks/bench_predictors.py, e.g.
`--models gp --set kernel=matern`): an extra linear kernel ("additive+rbf") gets a negligible weight and changes
nothing; Matern 5/2 equals RBF; during development, ARD lengthscales per column overfit (-0.04 to -0.1 Kendall
tau, coverage of mean +- 2 std down to 0.4-0.7) and were ten times slower, so they are not offered.

The predictive std includes the fitted noise and is calibrated by closed-form leave-one-out: for a GP the LOO
residual and variance of every training point follow from the inverse kernel matrix (Rasmussen & Williams 2006,
sec. 5.4.2), and the std is scaled so their mean squared z-score is 1. Above `max_hyper_fit` training subnets,
hyperparameters are fitted on a random subset of that size and the GP is then conditioned on all subnets
(each optimizer step costs O(n^3): on one core 2000 subnets take ~8 s this way instead of ~30-45 s, 500 ~5 s).

With zero-cost proxies in the encoding (`onehot+zc`, or any encoding plus `zc`), the GP is by default a stack
(`proxies="stack"`, see `predictors.stacking`): a GP on the other columns, one on all columns, one on the
proxy columns and the best proxy alone, weighted by non-negative least squares on their held-out predictions,
so the proxies count most where the encoding has little data. `proxies="joint"` is one kernel over all
columns (the behaviour before stacking; files saved then load as such).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from supernets.space import SearchSpace

from .base import Predictor, register_predictor
from .encodings import Encoding
from .stacking import PROXY_MODES, ProxyStacking  # noqa: F401 - PROXY_MODES was defined here; callers import it

__all__ = ["GPPredictor"]

KERNELS = ("rbf", "additive+rbf", "matern")


@register_predictor
class GPPredictor(ProxyStacking, Predictor):
    """scikit-learn `GaussianProcessRegressor` on a categorical encoding.

    `kernel`: "rbf" (default), "additive+rbf" (plus a linear kernel) or "matern" (5/2); `n_restarts`: extra
    random starts of the marginal-likelihood optimizer; `calibrate`: rescale std by closed-form leave-one-out;
    `max_hyper_fit`: most subnets used to fit hyperparameters (the GP itself conditions on all of them);
    `theta`: fitted log-hyperparameters to reuse (`theta_` of another GP); `proxies`: with a `zc` part in the
    encoding, "stack" (GPs per feature group and the best proxy, weighted on held-out predictions) or "joint"
    (one kernel over all columns).
    """

    name = "gp"
    default_encoding = "onehot+ordinal"

    def __init__(
        self,
        space: SearchSpace,
        encoding: str | None = None,
        seed: int = 0,
        target_transform: str = "rank",
        kernel: str = "rbf",
        n_restarts: int = 1,
        calibrate: bool = True,
        max_hyper_fit: int = 500,
        theta: list[float] | None = None,
        proxies: str = "stack",
    ) -> None:
        super().__init__(space, encoding, seed, target_transform)
        if kernel not in KERNELS:
            raise ValueError(f"unknown GP kernel {kernel!r}; choose from {list(KERNELS)}")
        self._init_proxies(proxies)
        n_theta = self._kernel_for(kernel).n_dims * (len(self.stack_keys) if self._stacked else 1)  # GPs in it
        if theta is not None and (len(theta) != n_theta or not np.all(np.isfinite(theta))):
            raise ValueError(f"theta must be {n_theta} finite log-hyperparameters of the {kernel!r} kernel "
                             f"(e.g. another fitted GP's theta_), got {theta!r}")
        self.hparams = dict(kernel=kernel, n_restarts=int(n_restarts), calibrate=bool(calibrate),
                            max_hyper_fit=int(max_hyper_fit),
                            theta=None if theta is None else [float(t) for t in theta], proxies=proxies)
        self._gp: Any = None
        self.std_scale_ = 1.0
        self.held_out_: np.ndarray | None = None  # closed-form leave-one-out mean of each training subnet (latent)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), **self.hparams}

    def _kernel(self):
        return self._kernel_for(self.hparams["kernel"])

    @staticmethod
    def _kernel_for(kind: str):
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, Matern, WhiteKernel

        # Targets are standardized, so unit amplitude and a 10% noise guess are sensible starting points; a
        # decision flip moves a one-hot vector by sqrt(2), so the lengthscale starts at a few flips.
        amplitude = ConstantKernel(1.0, (1e-3, 1e2))
        white = WhiteKernel(noise_level=0.1, noise_level_bounds=(1e-6, 0.5))
        if kind == "matern":
            return amplitude * Matern(length_scale=3.0, length_scale_bounds=(1.0, 1e3), nu=2.5) + white
        rbf = amplitude * RBF(length_scale=3.0, length_scale_bounds=(1.0, 1e3))
        if kind == "additive+rbf":
            return ConstantKernel(0.1, (1e-4, 1e2)) * DotProduct(sigma_0=1.0, sigma_0_bounds="fixed") + rbf + white
        return rbf + white

    def _stack_member(self, key: str, encoding: Encoding) -> GPPredictor:
        # Members fit latent targets directly (the warp is this predictor's) and are plain GPs; a stack's theta
        # is its members' one after the other, in the order of stack_keys.
        theta, i = self.hparams["theta"], self.stack_keys.index(key)
        if theta is not None:
            k = len(theta) // len(self.stack_keys)  # the members share one kernel type
            theta = theta[i * k:(i + 1) * k]
        return GPPredictor(self.space, encoding=encoding, seed=self.seed, **{**self.hparams, "theta": theta,
                                                                             "proxies": "joint"})

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor

        if self._fit_stack(X, y):
            return
        h = self.hparams
        with warnings.catch_warnings():
            # A hyperparameter at its bound (e.g. no noise in a noise-free table) is expected, not a user problem.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel=self._kernel(), alpha=1e-8, normalize_y=True,
                                          n_restarts_optimizer=h["n_restarts"], random_state=self.seed)
            if h["theta"] is not None:  # hyperparameters given: condition on the data, no optimizer run
                kernel = self._kernel().clone_with_theta(np.asarray(h["theta"]))
                gp = GaussianProcessRegressor(kernel=kernel, alpha=1e-8, normalize_y=True, optimizer=None)
            elif len(y) > h["max_hyper_fit"]:
                rows = np.random.default_rng(self.seed).choice(len(y), h["max_hyper_fit"], replace=False)
                kernel = gp.fit(X[rows], y[rows]).kernel_
                gp = GaussianProcessRegressor(kernel=kernel, alpha=1e-8, normalize_y=True, optimizer=None)
            gp.fit(X, y)
        self._gp = gp
        scale = self._loo_scale()  # also sets held_out_
        self.std_scale_ = scale if h["calibrate"] and len(y) >= 5 else 1.0

    def _loo_scale(self) -> float:
        """sqrt(mean z^2) of the closed-form leave-one-out residuals, clipped to [0.5, 5]."""
        from scipy.linalg import solve_triangular  # here, not at import (scipy's import costs a second)

        gp = self._gp
        # diag(K^-1) = column sums of squares of L^-1: one triangular solve, half the work of cho_solve(L, I).
        self._linv = solve_triangular(gp.L_, np.eye(len(gp.L_)), lower=True)  # (n, n), reused by _predict
        k_inv_diag = (self._linv**2).sum(axis=0)
        resid = gp.alpha_.reshape(-1) / k_inv_diag  # y_i - mu_{-i}, in the GP's normalized units
        self.held_out_ = (gp.y_train_.reshape(-1) - resid) * gp._y_train_std + gp._y_train_mean
        z2 = resid**2 * k_inv_diag  # resid^2 / var_{-i}, var_{-i} = 1 / [K^-1]_ii
        return float(np.clip(np.sqrt(z2.mean()), 0.5, 5.0))

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # scikit-learn's predict(return_std=True), with L^-1 kept from fitting: the variance then costs a matrix
        # product instead of a triangular solve per call (3x less time; the search sampler predicts thousands).
        if self.stack_ is not None:
            return self.stack_.predict(X)
        gp = self._gp
        if getattr(self, "_linv", None) is None:  # a loaded predictor: L^-1 is not saved (it is n x n)
            from scipy.linalg import solve_triangular

            self._linv = solve_triangular(gp.L_, np.eye(len(gp.L_)), lower=True)
        k_star = gp.kernel_(X, gp.X_train_)  # (N, n)
        mean = k_star @ gp.alpha_.reshape(-1) * gp._y_train_std + gp._y_train_mean
        v = self._linv @ k_star.T  # (n, N)
        var = np.maximum(gp.kernel_.diag(X) - np.einsum("ij,ij->j", v, v), 0.0) * gp._y_train_std**2
        return mean, np.maximum(np.sqrt(var) * self.std_scale_, 1e-6)

    @property
    def theta_(self) -> list[float]:
        """The fitted log-hyperparameters; `GPPredictor(space, theta=...)` reuses them without optimizing."""
        self._check_fitted("theta_")
        if self.stack_ is not None:
            return [t for m in self.stack_.members.values() for t in m.theta_]  # type: ignore[attr-defined]
        return [float(t) for t in self._gp.kernel_.theta]

    @property
    def kernel_(self) -> Any:
        """The fitted scikit-learn kernel (print it to read the hyperparameters)."""
        self._check_fitted("kernel_")
        if self.stack_ is not None:
            raise ValueError("this GP stacks a GP per feature group: read members_[name].kernel_ and weights_")
        return self._gp.kernel_

    # A GP is its kernel's hyperparameters plus its training data: saved as numbers, refitted on load with the
    # optimizer off, which reproduces the fitted regressor without pickling scikit-learn objects.
    def _state(self) -> dict[str, Any]:
        if self.stack_ is not None:
            return self._with_stack(super()._state())
        gp = self._gp
        y = gp.y_train_ * gp._y_train_std + gp._y_train_mean if gp.normalize_y else gp.y_train_
        return {**super()._state(), "kernel": repr(gp.kernel_), "theta": gp.kernel_.theta, "X": gp.X_train_,
                "y": y, "alpha": gp.alpha, "normalize_y": bool(gp.normalize_y), "std_scale": self.std_scale_,
                "held_out": self.held_out_}

    def _set_state(self, state: dict[str, Any]) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor

        super()._set_state(state)
        if self._load_stack(state):
            return
        kernel, theta = self._kernel(), np.asarray(state["theta"], dtype=float)
        if theta.shape != kernel.theta.shape or repr(kernel := kernel.clone_with_theta(theta)) != state["kernel"]:
            raise ValueError(f"the saved GP kernel {state['kernel']} is not the {self.hparams['kernel']!r} kernel "
                             "this version builds")
        gp = GaussianProcessRegressor(kernel=kernel, alpha=state["alpha"], normalize_y=bool(state["normalize_y"]),
                                      optimizer=None)
        self._gp = gp.fit(np.asarray(state["X"], dtype=float), np.asarray(state["y"], dtype=float))
        self.std_scale_ = float(state["std_scale"])
        self.held_out_ = None if state["held_out"] is None else np.asarray(state["held_out"], dtype=float)
