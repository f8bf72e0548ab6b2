"""The predictor protocol: `fit(archs, scores)`, `predict(archs) -> (mean, std)`, `save(path)` / `load(path)`.

A predictor belongs to one search space and one encoding of it; scores are whatever the caller measured (supernet
holdout accuracy, standalone accuracy, latency, ...), in the caller's units, higher or lower meaning whatever the
caller says. `predict` answers in those units: the mean and a standard deviation that says how far off the mean
may be. Subclasses implement `_fit(X, y)` and `_predict(X)` on numpy arrays; this base class validates input
(empty, constant or non-finite scores, subnets of another space, predicting before fitting), encodes subnets,
and writes and reads predictor files.

Predictors are found by name: `create_predictor("xgb", space)`, `list_predictors()`, `load_predictor(path)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np

from supernets._registry import Registry
from supernets.space import Arch, SearchSpace

from .encodings import Encoding, get_encoding
from .files import read_state_file, write_state_file

__all__ = [
    "Predictor", "NotFittedError", "register_predictor", "create_predictor", "list_predictors", "load_predictor",
    "as_archs", "check_scores",
]

FILE_FORMAT = "oneshot-predictor"
FILE_VERSION = 2  # 1 was a pickle, refused since it can run code


class NotFittedError(RuntimeError):
    """`predict` or `save` was called before `fit`."""


def as_archs(space: SearchSpace, archs: Iterable[Arch | str], what: str = "subnet",
             owner: str = "this predictor") -> list[Arch]:
    """Subnets of `space` as `Arch`s: strings are parsed, `Arch`s of another space are refused by name (errors
    call the i-th one `{what} #i` and the caller `owner`)."""
    out: list[Arch] = []
    for i, a in enumerate(archs):
        if isinstance(a, str):
            try:
                a = Arch.from_str(space, a)
            except ValueError as exc:
                raise ValueError(f"{what} #{i} {a!r} is not in space {space.name!r}: {exc}") from None
        elif not isinstance(a, Arch):
            raise TypeError(f"{what} #{i} must be an Arch or its string, got {type(a).__name__}")
        elif a.space.fingerprint != space.fingerprint:
            raise ValueError(
                f"{what} #{i} {str(a)!r} is from space {a.space.name!r} (fingerprint {a.space.fingerprint}), "
                f"but {owner} is for space {space.name!r} (fingerprint {space.fingerprint})"
            )
        out.append(a)
    return out


def check_scores(scores: Sequence[float] | np.ndarray, n_archs: int) -> np.ndarray:
    """Training targets as a float vector, refusing empty, mismatched, non-finite or constant scores."""
    try:
        y = np.asarray(scores, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError("scores must be numbers (one per subnet)") from None
    if n_archs == 0 or y.size == 0:
        raise ValueError("cannot fit a predictor on an empty training set: give at least 2 subnets with scores")
    if y.size != n_archs:
        raise ValueError(f"got {n_archs} subnets but {y.size} scores; give one score per subnet")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(
            f"{bad.size} of {y.size} scores are NaN or infinite (first at positions {bad[:5].tolist()}); "
            "drop or re-measure those subnets"
        )
    if np.ptp(y) == 0:
        raise ValueError(
            f"all {y.size} training scores equal {y[0]!r}: a predictor needs at least two distinct scores to rank by"
        )
    return y


TARGET_TRANSFORMS = ("rank", "standard")


class TargetWarp:
    """Monotone map from scores to the standardized latent targets that models fit, and back.

    "standard": (y - mean) / std. "rank": the Gaussian copula, each score goes to the normal quantile of its
    rank, so a long tail (e.g. NAS-Bench-201's untrainable cells at 10% accuracy among cells at 85-94%) does not
    dominate a squared loss, and a sigmoid-shaped accuracy becomes closer to additive. The inverse interpolates
    between the training points and extrapolates linearly with the slope of the outer tenth at each end. Models
    predict a Gaussian (mu, sigma) in latent units; its median and the half-width of its +-1 sigma interval,
    mapped back, are the mean and std in score units, so the std grows where scores are spread thin.
    """

    def __init__(self, y: np.ndarray, kind: str) -> None:
        self.kind = kind
        self.mean, self.std = float(y.mean()), float(y.std())
        if kind == "rank":
            from scipy.stats import norm, rankdata

            ranks = rankdata(y)  # ties share their average rank
            z = norm.ppf((ranks - 0.5) / len(y))
            self.ys, first = np.unique(y, return_index=True)  # sorted distinct scores
            self.zs = z[first]
            k = max(1, len(self.ys) // 10)
            self.slopes = (
                (self.ys[k] - self.ys[0]) / max(self.zs[k] - self.zs[0], 1e-12),
                (self.ys[-1] - self.ys[-1 - k]) / max(self.zs[-1] - self.zs[-1 - k], 1e-12),
            )

    def state_dict(self) -> dict[str, Any]:
        """The fitted map as numbers and arrays (what a predictor file stores)."""
        state: dict[str, Any] = {"kind": self.kind, "mean": self.mean, "std": self.std}
        if self.kind == "rank":
            state.update(ys=self.ys, zs=self.zs, slopes=list(self.slopes))
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TargetWarp:
        """The warp `state_dict()` describes, without the scores it was fitted on."""
        warp = cls.__new__(cls)
        warp.kind, warp.mean, warp.std = str(state["kind"]), float(state["mean"]), float(state["std"])
        if warp.kind not in TARGET_TRANSFORMS:
            raise ValueError(f"unknown target_transform {warp.kind!r} in a saved predictor")
        if warp.kind == "rank":
            warp.ys, warp.zs = np.asarray(state["ys"], dtype=float), np.asarray(state["zs"], dtype=float)
            warp.slopes = (float(state["slopes"][0]), float(state["slopes"][1]))
        return warp

    def forward(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "standard":
            return (y - self.mean) / self.std
        return self._interp(y, self.ys, self.zs, (1 / max(self.slopes[0], 1e-12), 1 / max(self.slopes[1], 1e-12)))

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        return self._interp(z, self.zs, self.ys, self.slopes)

    @staticmethod
    def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray, slopes: tuple[float, float]) -> np.ndarray:
        out = np.interp(x, xp, fp)
        out = np.where(x < xp[0], fp[0] + (x - xp[0]) * slopes[0], out)
        return np.where(x > xp[-1], fp[-1] + (x - xp[-1]) * slopes[1], out)

    def backward(self, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Latent Gaussian (mu, sigma) to (mean, std) in score units."""
        if self.kind == "standard":
            return mu * self.std + self.mean, sigma * self.std
        lo, mid, hi = self._inverse(mu - sigma), self._inverse(mu), self._inverse(mu + sigma)
        return mid, np.maximum((hi - lo) / 2, 1e-12 * max(self.std, 1e-12))


class Predictor:
    """Base class: a seeded regressor from subnets of one space to scores, with an uncertainty estimate.

    `space` is the search space; `encoding` names the feature encoding (see `predictors.encodings`; each
    predictor has a default); `seed` seeds the predictor's own generator, so equal seeds give equal predictions;
    `target_transform` is "rank" (Gaussian copula of the scores, the default) or "standard" (see `TargetWarp`).
    Extra keyword arguments are the model's hyperparameters, recorded and saved with it.
    """

    name: ClassVar[str] = ""
    default_encoding: ClassVar[str] = "onehot"

    def __init__(
        self, space: SearchSpace, encoding: str | Encoding | None = None, seed: int = 0, target_transform: str = "rank"
    ) -> None:
        if target_transform not in TARGET_TRANSFORMS:
            raise ValueError(f"unknown target_transform {target_transform!r}; choose from {list(TARGET_TRANSFORMS)}")
        self.space = space
        if isinstance(encoding, Encoding):  # built with context (e.g. `zc` with its proxy source)
            if encoding.space.fingerprint != space.fingerprint:
                raise ValueError(f"encoding {encoding.name!r} is for space {encoding.space.name!r}, not {space.name!r}")
            self.encoding: Encoding = encoding
        else:
            self.encoding = get_encoding(encoding or self.default_encoding_for(space), space)
        self.seed = int(seed)
        self.target_transform = target_transform
        self.n_train_: int = 0
        self._warp: TargetWarp | None = None

    @classmethod
    def default_encoding_for(cls, space: SearchSpace) -> str:
        """The encoding this predictor uses on `space` when none is named (parts that don't apply are dropped)."""
        from .encodings import list_encodings

        usable = set(list_encodings(space))
        parts = [p for p in cls.default_encoding.split("+") if p in usable]
        return "+".join(parts) or "onehot"

    # ------------------------------------------------------------------ protocol
    @property
    def fitted(self) -> bool:
        return self.n_train_ > 0

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments that rebuild an unfitted copy (`type(p)(space, **p.get_params())`)."""
        encoding = self.encoding.name if self.encoding.by_name else self.encoding  # clones share a bound encoding
        return {"encoding": encoding, "seed": self.seed, "target_transform": self.target_transform}

    def clone(self, **changes: Any) -> Predictor:
        """An unfitted predictor with the same space and parameters (some replaced by `changes`)."""
        return type(self)(self.space, **{**self.get_params(), **changes})

    def fit(self, archs: Iterable[Arch | str], scores: Sequence[float] | np.ndarray) -> Predictor:
        """Fit on subnets and their measured scores (any units); returns self."""
        archs = as_archs(self.space, archs)
        y = check_scores(scores, len(archs))
        X = self.encoding.encode(archs)
        self._warp = TargetWarp(y, self.target_transform)
        self._fit(X, self._warp.forward(y))
        self.n_train_ = len(y)
        return self

    def predict(self, archs: Iterable[Arch | str]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and standard deviation per subnet, in the units of the training scores."""
        self._check_fitted("predict")
        archs = as_archs(self.space, archs)
        if not archs:
            return np.zeros(0), np.zeros(0)
        mean, std = self._predict(self.encoding.encode(archs))
        return self._warp.backward(mean, std)  # type: ignore[union-attr]

    def predict_latent(self, archs: Iterable[Arch | str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the model's Gaussian belief in its latent units (warped, standardized scores).

        The belief is Gaussian there, not in score units, so acquisition functions that assume a Gaussian
        (expected improvement) are exact here; compare with `to_latent` of a score.
        """
        self._check_fitted("predict_latent")
        archs = as_archs(self.space, archs)
        if not archs:
            return np.zeros(0), np.zeros(0)
        return self._predict(self.encoding.encode(archs))

    def to_latent(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Scores in the latent units `predict_latent` answers in (the fitted target transform)."""
        self._check_fitted("to_latent")
        return self._warp.forward(np.asarray(scores, dtype=float))  # type: ignore[union-attr]

    def _check_fitted(self, what: str) -> None:
        if not self.fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(archs, scores) before {what}()")

    # Implemented by subclasses, on standardized targets.
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """Fitted state as JSON values, numeric arrays and bytes (no other objects: files must load without pickle).

        Subclasses add their model's state to this dict and restore it in `_set_state`.
        """
        return {"n_train": self.n_train_, "warp": None if self._warp is None else self._warp.state_dict()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.n_train_ = int(state["n_train"])
        self._warp = None if state["warp"] is None else TargetWarp.from_state_dict(state["warp"])

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted predictor, its space and parameters to one file, atomically; returns the path.

        Any file name works; `oneshot predict fit` uses `<table>.<model>.predictor`. The file is a zip of JSON
        and `.npy` arrays (see `predictors.files`), so loading it cannot run code; xgboost boosters are stored in
        xgboost's own binary format inside it, so files survive xgboost upgrades.
        """
        from supernets.registry import space_to_dict

        self._check_fitted("save")
        return write_state_file(path, {
            "format": FILE_FORMAT, "version": FILE_VERSION, "predictor": self.name,
            "space": space_to_dict(self.space), "fingerprint": self.space.fingerprint,
            "params": {**self.get_params(), "encoding": self.encoding.name}, "state": self._state(),
            "encoding_state": self.encoding.state_dict(),
        })

    @classmethod
    def load(cls, path: str | os.PathLike, **context: Any) -> Predictor:
        """Read a predictor file written by `save`; works without knowing its space (it is stored inside).

        `context` is what its encoding needs beyond the name (`proxies=` for one with `zc`). Nothing in the file
        is executed: pickle files (and anything else that is not a predictor file) are refused.
        """
        from supernets.registry import space_from_dict

        where = repr(str(path))
        payload = read_state_file(path)
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ValueError(f"{where} is not a oneshot predictor file")
        if payload.get("version") != FILE_VERSION:
            raise ValueError(f"{where} has predictor file version {payload.get('version')}, expected {FILE_VERSION}")
        try:
            space = space_from_dict(payload["space"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where} is a damaged predictor file (its space does not parse: {exc})") from None
        if space.fingerprint != payload.get("fingerprint"):
            raise ValueError(f"{where} records a space that this version of oneshot builds differently")
        if not isinstance(payload.get("predictor"), str) or payload["predictor"] not in _PREDICTORS:
            raise ValueError(f"{where} holds an unknown predictor {payload.get('predictor')!r}; known: {list_predictors()}")
        kind = _PREDICTORS.get(payload["predictor"])
        if cls is not Predictor and not issubclass(kind, cls):
            raise ValueError(f"{where} holds a {kind.__name__}, not a {cls.__name__}")
        try:
            params = dict(payload["params"])
            if context:
                params["encoding"] = get_encoding(params["encoding"], space, **context)
            pred = kind(space, **params)
            pred.encoding.load_state_dict(payload.get("encoding_state", {}))
            pred._set_state(payload["state"])
        except (KeyError, TypeError, IndexError, AttributeError) as exc:  # ValueErrors already name their problem
            raise ValueError(f"{where} is a damaged predictor file ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:  # its own message names the problem; add which file
            raise ValueError(f"{where}: {exc}") from None
        return pred

    def __repr__(self) -> str:
        state = f"fitted on {self.n_train_}" if self.fitted else "unfitted"
        return f"{type(self).__name__}({self.space.name}, encoding={self.encoding.name!r}, seed={self.seed}, {state})"


_PREDICTORS: Registry[type[Predictor]] = Registry("predictor")


def register_predictor(cls: type[Predictor]) -> type[Predictor]:
    """Class decorator: make a predictor available by its `name` to `create_predictor` and `load_predictor`."""
    if not cls.name:
        raise ValueError(f"predictor class {cls.__name__} needs a name")
    return _PREDICTORS.register(cls)


def list_predictors() -> list[str]:
    """Registered predictor names."""
    return _PREDICTORS.list()


def create_predictor(name: str, space: SearchSpace, **kwargs: Any) -> Predictor:
    """A new unfitted predictor, e.g. `create_predictor("gp", space, seed=1)`."""
    return _PREDICTORS.create(name, space, **kwargs)


def load_predictor(path: str | os.PathLike, **context: Any) -> Predictor:
    """Read any predictor file written by `Predictor.save` (`proxies=` for one whose encoding has `zc`)."""
    return Predictor.load(path, **context)
