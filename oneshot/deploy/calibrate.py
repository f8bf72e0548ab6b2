"""Calibrate the estimate search maximizes with a few standalone truths: signals in, a fitted predictor out.

The supernet is a weak ranker of standalone accuracy; zero-cost proxies and cost are others; a handful of subnets
trained standalone say which of them to believe on this data. `calibrate(space, subnets, signals, truths)`:

1. picks `subnets` (N) feasible subnets by a design (`design_subnets`): a Latin hypercube over the ranks of
   cost (MACs) and of a score signal (the supernet's holdout accuracy when there is one), the smallest and the
   largest feasible subnet always included, so the cheap, the expensive, the well and the badly scored are all
   trained;
2. obtains their truths: a `TabularBenchmark` (a tabular benchmark or a user's table of trained networks), any
   `arch -> float`, or `RetrainTruths` (standalone training with the recipe's `retrain` settings, through
   `oneshot.deploy.retrain`, whose result table serves subnets trained before with the same settings);
3. fits a stacked predictor (`predictors.stacking`: a GP on the encoding, one on everything, one on the signals,
   the best signal alone, weighed by NNLS on held-out predictions) on the truths with every signal as a column
   (`predictors.encodings.SignalEncoding`), ranked against the values of the whole candidate pool;
4. reports, per signal, Kendall tau with the truths over the N and its bootstrap interval; the fused estimate's
   out-of-fold tau (and, when there are supernet signals, the same without them: did the supernet help?); the
   stack's weights; and what the N truths cost.

`Calibration.objective()` is what search maximizes: a trained subnet's measured truth, else the predicted mean, or
mean + kappa * std (`"ucb"`). With `active=K`, K more truths are the predicted best of each search budget, a round
at a time: they put the trained subnets where search picks.
Bad input gets one-line errors (N beyond the feasible subnets, truths of another space's table, NaN or constant
truths); a signal constant or undefined over the N has no tau: the report says so (`note`) and the stack cannot
lean on it. Nothing here writes outside the folder given to `Calibration.save`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from predictors import Predictor, create_predictor, get_encoding, kendall_tau
from predictors.encodings import ConcatEncoding, SignalEncoding
from predictors.intervals import DEFAULT_RESAMPLES, accuracy_interval, bootstrap_interval
from predictors.metrics import LowSpreadError, cross_validate
from supernets import Arch, SearchSpace
from supernets.files import atomic_write_bytes

from oneshot.score.tabular import TabularBenchmark

__all__ = ["calibrate", "calibrated_objective", "design_subnets", "candidate_pool", "Calibration", "RetrainTruths", "SupernetSignals",
           "CALIBRATION_NAME", "ACQUISITIONS"]

CALIBRATION_NAME = "calibration"  # calibration.json / .md / .predictor in the folder given to `save`
ACQUISITIONS = ("mean", "ucb")
MIN_SUBNETS = 3  # fewer truths cannot rank anything (and leave nothing to cross-validate)
ENUMERATE_UP_TO = 20_000  # spaces this small are enumerated: "feasible subnets" is then an exact count
POOL_PER_SUBNET = 10  # a sampled candidate pool holds this many subnets per truth asked for (at least MIN_POOL)
MIN_POOL = 200
SUPERNET_PREFIX = "supernet"  # signals named so are the supernet's: the design spreads over the first, the report
#                               ablates them all


# --------------------------------------------------------------------------- which subnets
def candidate_pool(space: SearchSpace, size: int, feasible: Callable[[Arch], bool] | None = None, seed: int = 0,
                   candidates: Iterable[Arch] | None = None) -> tuple[list[Arch], bool]:
    """(distinct feasible subnets, whether that is all of them): `candidates` as given, else every subnet of a
    small space, else `size` seeded draws (plus the smallest and largest subnet); one per network
    (`space.canonical`), the infeasible dropped."""
    if candidates is not None:
        pool, complete = list(candidates), True
    elif space.size() <= ENUMERATE_UP_TO:
        pool, complete = list(space), True
    else:
        rng = np.random.default_rng([seed, 0xCA1])
        pool, complete = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(size))], False
    out = list(dict.fromkeys(space.canonical(a) for a in pool))
    if feasible is not None:
        out = [a for a in out if feasible(a)]
    if not complete and len(out) > size:
        out = out[:size]
    return out, complete


def _ranks(v: np.ndarray) -> np.ndarray:
    """Mid-rank quantiles in (0, 1); NaN lowest."""
    from scipy.stats import rankdata

    v = np.where(np.isfinite(v), v, -np.inf)
    return (rankdata(v) - 0.5) / len(v)


def design_subnets(pool: Sequence[Arch], n: int, cost: np.ndarray, score: np.ndarray | None = None,
                   seed: int = 0) -> list[int]:
    """Indices of `n` of `pool`: the cheapest and the most expensive, then one per equal-count cost stratum with a
    score rank set by a seeded Latin hypercube (each stratum its own score quantile), so the N spread over cost
    and over the score (e.g. the supernet's accuracy); without a score, a random one per cost stratum."""
    if n > len(pool):
        raise ValueError(f"cannot pick {n} of {len(pool)} subnets")
    rng = np.random.default_rng([seed, 0xDE5])
    order = np.lexsort((np.arange(len(pool)), np.asarray(cost, float)))  # by cost, ties by pool order
    fixed = list(dict.fromkeys([int(order[0]), int(order[-1])]))[:n]
    rest = np.array([i for i in order if i not in fixed], dtype=int)
    if n == len(fixed):
        return fixed
    strata = [s for s in np.array_split(rest, n - len(fixed)) if len(s)]
    q = _ranks(np.asarray(score, float)) if score is not None else None
    targets = (rng.permutation(len(strata)) + rng.random(len(strata))) / max(len(strata), 1)
    picks = []
    for s, t in zip(strata, targets):
        if q is None:
            picks.append(int(rng.choice(s)))
        else:
            picks.append(int(s[np.argmin(np.abs(q[s] - t))]))
    return fixed + picks


# --------------------------------------------------------------------------- where truths come from
class RetrainTruths:
    """Standalone truths: each subnet trained with the recipe's `retrain` settings (`oneshot.deploy.retrain`).

    The truth is the standalone HOLDOUT accuracy (`metric`), never the test split's: the test split stays for the
    final report of the chosen subnets. `table_path` (e.g. the run folder's retrain table) serves subnets trained
    before with the same settings and data instead of training them again. `seconds` adds up the training time of
    the truths served (when they were trained), `trained` counts this object's new trainings.
    """

    batched = True

    def __init__(self, data_info: dict[str, Any], section: Any = None, seed: int = 0,
                 table_path: str | os.PathLike | None = None, accelerator: str = "auto", progress: bool = False,
                 metric: str = "standalone_holdout_acc", data_overrides: dict[str, Any] | None = None) -> None:
        self.data_info, self.section, self.seed = data_info, section, int(seed)
        self.table_path, self.accelerator, self.progress = table_path, accelerator, progress
        self.metric, self.data_overrides = metric, data_overrides
        self.seconds, self.trained = 0.0, 0
        self.records: list[dict[str, Any]] = []

    @property
    def holdout_images(self) -> int | None:
        """How many images each truth's holdout accuracy counts (its sampling noise), when the data says."""
        n = (self.data_info.get("split_sizes") or {}).get("holdout")
        return int(n) if n else None

    @property
    def identity(self) -> str:
        s = self.section
        return (f"standalone training ({self.metric}), epochs={getattr(s, 'epochs', '?')} seed={self.seed} "
                f"data={self.data_info.get('name')}")

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        from .retrain import retrain_subnets

        before = set()
        if self.table_path is not None and Path(self.table_path).is_file():
            from oneshot.table import ResultTable

            before = {r.get("key") for r in ResultTable(self.table_path, archs[0].space).records()}
        first = len(self.records)  # numbered on across calls (active choice asks a round at a time)
        records = retrain_subnets([{"arch": a, "name": f"calibrate-{first + i}"} for i, a in enumerate(archs)],
                                  self.data_info, self.section, self.seed, self.table_path, self.accelerator,
                                  self.progress, self.data_overrides)
        self.records = self.records + records
        self.seconds += float(sum(r.get("train_seconds", 0.0) for r in records))
        self.trained += sum(1 for r in records if r.get("key") not in before)  # the rest came from the table
        return np.array([r[self.metric] for r in records], dtype=float)


class SupernetSignals:
    """The supernet's holdout accuracy and loss (after BN recalibration) as signals: `supernet_acc`,
    `supernet_loss`. The supernet and data are loaded once; evaluations go through the checkpoint's evaluation
    table, so a subnet already evaluated (by fidelity, search, an earlier run) costs nothing."""

    names = [f"{SUPERNET_PREFIX}_acc", f"{SUPERNET_PREFIX}_loss"]

    def __init__(self, checkpoint: str | os.PathLike, supernet: Any = None, **evaluate_args: Any) -> None:
        """checkpoint: the supernet's checkpoint (its folder holds the evaluation table); supernet: the same
        supernet already loaded (not loaded again); evaluate_args: `oneshot.score.evaluate.evaluate`'s settings,
        `data` a SplitDataModule or overrides of the checkpoint's data."""
        from oneshot.data import SplitDataModule
        from oneshot.score.evaluate import TABLE_NAME, datamodule_for
        from oneshot.training.checkpoint import load_supernet

        self.path = Path(checkpoint)
        if supernet is None:
            supernet, info = load_supernet(self.path)
        else:
            info = None
        self.supernet = supernet
        self.args = dict(evaluate_args)
        data = self.args.pop("data", None)
        if isinstance(data, SplitDataModule):
            self.dm = data
        else:
            if info is None:
                from oneshot.training.checkpoint import read_checkpoint

                info = read_checkpoint(self.path)["oneshot"]
            self.dm = datamodule_for(info["data"], data)
        self.args.setdefault("table", self.path.parent / TABLE_NAME)
        self.args.setdefault("progress", False)
        self.seconds = 0.0

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        import torch

        from oneshot.score.evaluate import evaluate

        if not archs:
            return np.zeros((0, 2))
        t0 = time.perf_counter()
        with torch.no_grad():
            records = evaluate(self.supernet, list(archs), data=self.dm, **self.args)
        self.seconds += time.perf_counter() - t0
        return np.array([[r["holdout_acc"], r["holdout_loss"]] for r in records], dtype=float)


def _truth_fn(space: SearchSpace, truths: Any, metric: str) -> tuple[Callable[[list[Arch]], np.ndarray], str]:
    """(archs -> truths, a description) from a table, a batched source or an `arch -> float`."""
    if isinstance(truths, (str, os.PathLike)):
        truths = TabularBenchmark.load(truths, space)
    if isinstance(truths, TabularBenchmark):
        if truths.space.fingerprint != space.fingerprint:
            raise ValueError(f"the truth table {truths.source} is for space {truths.space.name!r}, not "
                             f"{space.name!r}")
        truths.objective(metric)  # one-line error naming a row without the metric
        table = truths

        def lookup(archs: list[Arch]) -> np.ndarray:
            missing = [str(a) for a in archs if a not in table]
            if missing:
                raise ValueError(f"{len(missing)} of the {len(archs)} calibration subnets are not in the truth "
                                 f"table {table.source} (e.g. {missing[:3]}); give candidates= from the table")
            return np.array([table.value(a, metric) for a in archs], dtype=float)

        return lookup, f"table {table.source} ({metric}, sha256={table.digest})"
    if getattr(truths, "batched", False):
        return truths, getattr(truths, "identity", type(truths).__name__)
    if callable(truths):
        fn = truths
        return (lambda archs: np.array([fn(a) for a in archs], dtype=float),
                getattr(fn, "identity", getattr(fn, "__name__", type(fn).__name__)))
    raise TypeError(f"truths must be a TabularBenchmark, a table path, RetrainTruths or an arch -> float callable, "
                    f"got {type(truths).__name__}")


# --------------------------------------------------------------------------- the result
@dataclass
class Calibration:
    """A predictor fitted on N standalone truths with the signals as columns, and the per-signal report."""

    predictor: Predictor
    archs: list[Arch]
    truths: np.ndarray
    signal_names: list[str]
    signal_values: np.ndarray  # (N, P) raw values of the N subnets
    report: dict[str, Any] = field(default_factory=dict)

    def estimate(self, archs: Sequence[Arch], kappa: float = 0.0) -> np.ndarray:
        """Per subnet: its measured truth where it was trained, else the predicted mean + `kappa` std. A trained
        network's accuracy is known, not estimated: the stack's mean smooths it away (NAS-Bench-Macro, 25 truths:
        picking by the mean alone left 0.23 points of regret in the tightest budget, by this 0.145; 60 seeds)."""
        return _estimate(self.predictor, self.measured, archs, kappa)

    def objective(self, acquisition: str = "mean", kappa: float = 1.0) -> Callable[[Arch], float]:
        """`arch -> float` for `search(space, objective=...)`: a trained subnet's truth, else the predicted truth
        (`"mean"`) or its mean plus `kappa` standard deviations (`"ucb"`: optimism where the calibration is unsure);
        `.measured` names the trained subnets (search's `start`)."""
        k = _acquisition_kappa(acquisition, kappa)

        def calibrated(arch: Arch) -> float:
            return float(self.estimate([arch], k)[0])

        calibrated.identity = f"calibration sha256={self.digest} {acquisition} kappa={k:g}"  # type: ignore[attr-defined]
        calibrated.measured = self.measured  # type: ignore[attr-defined]
        return calibrated

    @cached_property
    def measured(self) -> dict[str, float]:
        """{canonical subnet string: truth} of the subnets trained for this calibration."""
        return _measured(self.archs, self.truths)

    @property
    def digest(self) -> str:
        """Hash of what the fit saw (subnets, truths, signal values, predictor settings): a study identity."""
        h = hashlib.sha256(json.dumps([[str(a) for a in self.archs], self.truths.tolist(), self.signal_names,
                                       np.nan_to_num(self.signal_values, nan=-1e300).tolist(),
                                       self.predictor.name, str(self.predictor.get_params())],
                                      default=str).encode())
        return h.hexdigest()[:16]

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
        """calibration.json (report, subnets, truths, signal values), calibration.md and calibration.predictor
        (load with `load_predictor(path, signals=...)`) in `out_dir`, atomically; returns the .md path."""
        out = Path(out_dir)
        target = out / f"{CALIBRATION_NAME}.json"
        if target.exists() and not overwrite:
            old = json.loads(target.read_text())
            if old.get("digest") != self.digest:
                raise ValueError(f"{str(target)!r} holds another calibration; pass overwrite=True to replace it")
        out.mkdir(parents=True, exist_ok=True)
        self.predictor.save(out / f"{CALIBRATION_NAME}.predictor")
        payload = {"digest": self.digest, "report": self.report,
                   "subnets": [{"arch": str(a), "truth": float(t),
                                **{n: (float(v) if np.isfinite(v) else None) for n, v in zip(self.signal_names, row)}}
                               for a, t, row in zip(self.archs, self.truths, self.signal_values)]}
        atomic_write_bytes(out / f"{CALIBRATION_NAME}.md", self.markdown().encode())
        atomic_write_bytes(target, json.dumps(payload, indent=2).encode())
        return out / f"{CALIBRATION_NAME}.md"

    def markdown(self) -> str:
        """The per-signal table: how each signal alone ranks the truths, the fused estimate, the weights, the cost."""
        r = self.report
        conf = f"{r['confidence']:.0%}"
        lines = [f"# Calibration on {r['n']} standalone truths", "",
                 f"Truths: {r['truths']}. Subnets: {r['design']}. Intervals: {conf} percentile bootstrap over the "
                 f"{r['n']} subnets ({r['resamples']} resamples).", "",
                 f"| signal | Kendall tau with the truths | {conf} interval | note |", "|---|---:|---:|---|"]
        for name, s in r["signals"].items():
            tau = "–" if s["tau"] is None else f"{s['tau']:+.3f}"
            ci = "–" if s["ci"] is None else f"[{s['ci'][0]:+.3f}, {s['ci'][1]:+.3f}]"
            lines.append(f"| {name} | {tau} | {ci} | {s.get('note', '')} |")
        for label, key in (("fused estimate, out of fold", "fused"), ("fused without the supernet signals, out of "
                                                                      "fold", "fused_without_supernet")):
            f = r.get(key)
            if f is None:
                continue
            tau = "–" if f["tau"] is None else f"{f['tau']:+.3f}"
            ci = "–" if f["ci"] is None else f"[{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}]"
            lines.append(f"| **{label}** | {tau} | {ci} | {f.get('note', '')} |")
        lines += ["", "Stack weights (members by their columns; a signal name is the best signal alone): " +
                  ", ".join(f"`{k}` {v:.2f}" for k, v in r["weights"].items()), "",
                  f"Cost: {r['cost']['text']}", "",
                  *([f"Truth noise: {r['truth_noise']['text']}.", ""] if r.get("truth_noise") else []),
                  f"Search with this calibration scores each of these {r['n']} subnets by its truth and every other "
                  "subnet by the fused estimate.", ""]
        lines += [f"- {note}" for note in r.get("notes", [])]
        return "\n".join(lines + [""] if r.get("notes") else lines)


def calibrated_objective(folder: str | os.PathLike, signals: Any, acquisition: str = "mean",
                         kappa: float = 1.0) -> Callable[[Arch], float]:
    """The search objective of a calibration saved in `folder` (`Calibration.save`), its signals computed by
    `signals` (the same names as when it was fitted): a trained subnet's truth, else the prediction (as
    `Calibration.objective`); its identity names the digests of the predictor file and of the truths."""
    from predictors import load_predictor

    path = Path(folder) / f"{CALIBRATION_NAME}.predictor"
    if not path.is_file():
        raise FileNotFoundError(f"no calibration in {str(folder)!r} (run the calibrate phase first, with "
                                "calibrate.subnets > 0)")
    k = _acquisition_kappa(acquisition, kappa)
    pred = load_predictor(path, signals=signals)
    measured = _saved_truths(Path(folder) / f"{CALIBRATION_NAME}.json", pred.space)

    def calibrated(arch: Arch) -> float:
        return float(_estimate(pred, measured, [arch], k)[0])

    digest = hashlib.sha256(path.read_bytes() + json.dumps(measured, sort_keys=True).encode()).hexdigest()[:16]
    calibrated.identity = f"calibration file sha256={digest} {acquisition} kappa={k:g}"  # type: ignore[attr-defined]
    calibrated.measured = measured  # type: ignore[attr-defined]
    return calibrated


def _acquisition_kappa(acquisition: str, kappa: float) -> float:
    """The std multiplier of an acquisition (0 for the mean), or a one-line error."""
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition {acquisition!r}; choose from {list(ACQUISITIONS)}")
    if not isinstance(kappa, (int, float)) or not math.isfinite(kappa) or kappa < 0:
        raise ValueError(f"kappa must be a finite number >= 0, got {kappa}")
    return float(kappa) if acquisition == "ucb" else 0.0


def _estimate(predictor: Predictor, measured: dict[str, float], archs: Sequence[Arch], kappa: float) -> np.ndarray:
    """Per subnet: its truth in `measured` (canonical string -> truth), else the predicted mean + `kappa` std (one
    predictor call for the subnets without a truth)."""
    archs = list(archs)
    out = np.array([measured.get(str(a.space.canonical(a)), np.nan) for a in archs], dtype=float)
    ask = np.flatnonzero(np.isnan(out))
    if ask.size:
        mean, std = predictor.predict([archs[i] for i in ask])
        out[ask] = np.asarray(mean, dtype=float) + kappa * np.asarray(std, dtype=float)
    return out


def _measured(archs: Sequence[Arch], truths: np.ndarray) -> dict[str, float]:
    """{canonical subnet string: its truth} of the trained subnets (the last truth where one was trained twice)."""
    return {str(a.space.canonical(a)): float(t) for a, t in zip(archs, truths) if math.isfinite(t)}


def _saved_truths(path: Path, space: SearchSpace) -> dict[str, float]:
    """{canonical subnet string: truth} of a saved calibration.json, or a one-line error naming the file."""
    try:
        rows = json.loads(path.read_text())["subnets"]
        return _measured([Arch.from_str(space, r["arch"]) for r in rows], np.array([r["truth"] for r in rows], float))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable calibration (its subnets and truths): {exc}") from None


# --------------------------------------------------------------------------- calibrate
def _tau_entry(values: np.ndarray, truths: np.ndarray, resamples: int, confidence: float, seed: int) -> dict:
    ok = np.isfinite(values)
    if ok.sum() < MIN_SUBNETS:
        return {"tau": None, "ci": None, "n": int(ok.sum()),
                "note": f"defined on only {int(ok.sum())} of the {len(values)} subnets: no tau"}
    v, t = values[ok], truths[ok]
    if np.ptp(v) == 0:
        return {"tau": None, "ci": None, "n": int(ok.sum()),
                "note": "constant over these subnets: it cannot rank them (no tau; the stack gets nothing from it)"}
    tau = kendall_tau(t, v)
    lo, hi = bootstrap_interval(lambda a, b: kendall_tau(b, a), v, t, n_resamples=resamples, confidence=confidence,
                                seed=seed)
    entry = {"tau": float(tau), "ci": [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None, "n": int(ok.sum())}
    if not ok.all():
        entry["note"] = f"undefined on {int((~ok).sum())} subnets (ranked lowest by the encoding)"
    return entry


def _oof(predictor: Predictor, archs: list[Arch], y: np.ndarray, seed: int, resamples: int,
         confidence: float) -> dict[str, Any]:
    """Out-of-fold Kendall tau of `predictor`'s kind on (archs, y), with a bootstrap interval over the N."""
    folds = min(5, len(y))
    import warnings

    try:
        with warnings.catch_warnings():  # per-fold metrics of one-subnet folds are NaN; only the pooled tau is used
            warnings.simplefilter("ignore", RuntimeWarning)
            cv = cross_validate(predictor, archs, y, folds=folds, seed=seed)
    except LowSpreadError as exc:
        return {"tau": None, "ci": None, "folds": folds, "note": f"not computed: {exc}"}
    tau = kendall_tau(y, cv.oof_mean)
    if not np.isfinite(tau):
        return {"tau": None, "ci": None, "folds": folds, "note": "the out-of-fold predictions are constant: no tau"}
    lo, hi = bootstrap_interval(lambda a, b: kendall_tau(b, a), cv.oof_mean, y, n_resamples=resamples,
                                confidence=confidence, seed=seed)
    return {"tau": float(tau), "ci": [lo, hi] if np.isfinite(lo) else None, "folds": folds}


def calibrate(
    space: SearchSpace,
    subnets: int,
    signals: Any,
    truths: Any,
    *,
    candidates: Iterable[Arch] | None = None,
    feasible: Callable[[Arch], bool] | None = None,
    cost: Callable[[Arch], float] | None = None,
    spread_by: str | None = None,
    archs: Sequence[Arch] | None = None,
    predictor: str = "gp",
    encoding: str | None = None,
    metric: str = "mean_acc",
    pool_size: int | None = None,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    predictor_options: dict[str, Any] | None = None,
    cross_validate_fit: bool = True,
    active: int = 0,
    regions: Sequence[Callable[[Arch], bool]] | None = None,
    kappa: float = 0.0,
) -> Calibration:
    """Fit the estimate search should maximize on `subnets` standalone truths, with `signals` as columns.

    space:      the search space. subnets: N, the number of truths (at least 3).
    signals:    a `SignalSource` (`predictors.Signals`, `ProxyLookup`, `SupernetSignals`, ...): names and
                `source(archs) -> (N, P)` raw values; computed for the whole candidate pool (the design reads them,
                and they are the encoding's rank reference).
    truths:     a `TabularBenchmark` or its path (column `metric`), `RetrainTruths`, or any `arch -> float`.
    candidates: the feasible subnets to choose from (default: all of a small space, else a seeded sample of
                `pool_size`, default max(10 N, 200)); `feasible` filters them (e.g. a budget).
    cost:       `arch -> cost` the design spreads over (default: analytic MACs); spread_by: the signal whose rank
                the design also spreads over (default: the first named `supernet*`, else cost alone).
    archs:      calibrate on exactly these subnets instead of a design (e.g. networks already trained).
    predictor, encoding, predictor_options: the model (default: a GP stack on its default encoding plus
                `signals`).
    seed:       fixes the pool, the design, the folds and the bootstrap.
    cross_validate_fit: compute the out-of-fold taus (a few more fits; False for benchmarks that judge the fit
                on held-out subnets themselves: the report then says they were not computed).
    active:     after the `subnets` of the design, this many more truths chosen one round at a time where the
                fused model puts the top: per round, in each of `regions` (e.g. one
                feasibility test per search budget; default the whole pool) the candidate of highest
                mean + kappa * std: kappa 0 (default) trains the predicted best not yet trained, which left less
                regret on NAS-Bench-Macro than kappa 0.25-2 (docs/measured-figures.md). N + active truths in all.
    """
    from supernets.cost import cost as analytic_cost

    if isinstance(subnets, bool) or not isinstance(subnets, int) or subnets < MIN_SUBNETS:
        raise ValueError(f"calibration needs at least {MIN_SUBNETS} subnets with truths, got subnets={subnets!r} "
                         "(0 turns calibration off in a recipe)")
    names = list(getattr(signals, "names", []))
    if not names or not callable(signals):
        raise TypeError("signals must be a SignalSource: `names` and a call archs -> (N, P) values "
                        "(e.g. predictors.Signals)")
    truth_fn, truth_text = _truth_fn(space, truths, metric)
    t_signals = time.perf_counter()
    if archs is not None:
        from predictors.base import as_archs

        chosen = list(dict.fromkeys(as_archs(space, archs)))
        if len(chosen) < MIN_SUBNETS:
            raise ValueError(f"calibration needs at least {MIN_SUBNETS} distinct subnets, got {len(chosen)}")
        pool, complete = chosen, True
        design_text = f"{len(chosen)} given"
        pool_values = np.asarray(signals(pool), dtype=float).reshape(len(pool), len(names))
        picked = list(range(len(pool)))
    else:
        size = pool_size or max(POOL_PER_SUBNET * subnets, MIN_POOL)
        pool, complete = candidate_pool(space, size, feasible, seed, candidates)
        if subnets > len(pool):
            what = "feasible subnets" if complete else f"feasible subnets found in {size} draws"
            raise ValueError(f"calibration asks for {subnets} subnets but there are only {len(pool)} {what}; "
                             f"lower calibrate.subnets to at most {len(pool)}")
        pool_values = np.asarray(signals(pool), dtype=float).reshape(len(pool), len(names))
        cost_fn = cost or (lambda a: float(analytic_cost(a).macs))
        costs = np.array([cost_fn(a) for a in pool], dtype=float)
        if spread_by is None:
            spread_by = next((n for n in names if n.startswith(SUPERNET_PREFIX)), None)
        if spread_by is not None and spread_by not in names:
            raise ValueError(f"spread_by={spread_by!r} is not a signal; signals: {names}")
        score = pool_values[:, names.index(spread_by)] if spread_by is not None else None
        picked = design_subnets(pool, subnets, costs, score, seed)
        chosen = [pool[i] for i in picked]
        design_text = (f"{subnets} of {len(pool)} {'feasible' if complete else 'sampled feasible'} subnets, "
                       f"spread over cost{' and ' + spread_by if spread_by else ''} (smallest and largest included, "
                       f"seed {seed})")
    signal_seconds = time.perf_counter() - t_signals
    t_truth = time.perf_counter()
    y = _truths_of(truth_fn, chosen)
    truth_wall = time.perf_counter() - t_truth
    opts = dict(predictor_options or {})
    base = encoding or create_predictor(predictor, space).default_encoding_for(space)

    def fused_model() -> Predictor:  # the base encoding plus every signal, ranked against the candidate pool
        enc = ConcatEncoding(space, [get_encoding(base, space), SignalEncoding(space, signals, reference=pool_values)])
        return create_predictor(predictor, space, encoding=enc, seed=seed, **opts)

    if active:
        if isinstance(active, bool) or not isinstance(active, int) or active < 0:
            raise ValueError(f"active must be a whole number of further truths, got {active!r}")
        if archs is not None:
            raise ValueError("active choice picks from a candidate pool: give candidates=, not archs=")
        kappa = _acquisition_kappa("ucb", kappa)
        t_active = time.perf_counter()
        picked, y = _choose_actively(pool, picked, y, active, regions, kappa, fused_model(), truth_fn)
        truth_wall += time.perf_counter() - t_active
        chosen = [pool[i] for i in picked]
        design_text += (f"; then {len(picked) - subnets} more chosen actively, one per "
                        f"{'budget' if regions else 'round'} at a time: the highest "
                        f"{f'mean + {kappa:g} std' if kappa else 'mean'} of the fused estimate")
    values = pool_values[picked]
    dropped = np.flatnonzero(~np.isfinite(y))
    notes = []
    if dropped.size:
        keep = np.isfinite(y)
        if keep.sum() < MIN_SUBNETS:
            raise ValueError(f"{dropped.size} of the {len(y)} truths are NaN or infinite; fewer than "
                             f"{MIN_SUBNETS} remain to calibrate on")
        notes.append(f"{dropped.size} subnets with a NaN truth left out ({[str(chosen[i]) for i in dropped[:3]]})")
        chosen, y, values = [a for a, k in zip(chosen, keep) if k], y[keep], values[keep]
    if np.ptp(y) == 0:
        raise ValueError(f"all {len(y)} truths equal {float(y[0])!r}: they cannot rank anything (train longer with "
                         "retrain.epochs, or calibrate on more subnets)")
    model = fused_model()
    full = model.encoding
    model.fit(chosen, y)

    report: dict[str, Any] = {
        "n": len(y), "space": space.name, "truths": truth_text, "design": design_text, "seed": seed,
        "resamples": resamples, "confidence": confidence, "predictor": predictor, "encoding": full.name,
        "signals": {n: _tau_entry(values[:, j], y, resamples, confidence, seed) for j, n in enumerate(names)},
        "fused": _oof(model, chosen, y, seed, resamples, confidence) if cross_validate_fit else dict(_NOT_CV),
        "weights": {k: float(v) for k, v in getattr(model, "weights_", {model.encoding.name: 1.0}).items()},
        "notes": notes,
    }
    supernet_cols = [j for j, n in enumerate(names) if n.startswith(SUPERNET_PREFIX)]
    if supernet_cols and len(supernet_cols) < len(names) and cross_validate_fit:
        # The same stack without the supernet's columns: whether the supernet helped on these truths.
        rest = [j for j in range(len(names)) if j not in supernet_cols]
        sub = _Columns(signals, rest)
        sub_enc = ConcatEncoding(space, [get_encoding(base, space),
                                         SignalEncoding(space, sub, reference=pool_values[:, rest])])
        report["fused_without_supernet"] = _oof(create_predictor(predictor, space, encoding=sub_enc, seed=seed,
                                                                 **opts), chosen, y, seed, resamples, confidence)
    holdout = getattr(truths, "holdout_images", None)
    if holdout and np.all((y >= 0) & (y <= 1)):  # accuracies as fractions of `holdout` images: their own noise
        lo, hi = accuracy_interval(float(np.median(y)), holdout, confidence)
        q1, q3 = np.percentile(y, [25, 75])
        text = (f"each truth is an accuracy on {holdout} holdout images: +-{50 * (hi - lo):.1f} points "
                f"({confidence:.0%}) at their median {float(np.median(y)):.1%}, against a spread of "
                f"{100 * (q3 - q1):.1f} points between their quartiles")
        report["truth_noise"] = {"holdout_images": holdout, "half_width": (hi - lo) / 2, "iqr": float(q3 - q1),
                                 "text": text}
    trained = getattr(truths, "trained", None)
    truth_seconds = float(getattr(truths, "seconds", 0.0)) if getattr(truths, "batched", False) else truth_wall
    epochs = getattr(getattr(truths, "section", None), "epochs", None)
    report["cost"] = {
        "truths": len(chosen), "truth_seconds": round(truth_seconds, 2), "trained_now": trained,
        "epochs": epochs, "signal_seconds": round(signal_seconds, 2), "pool": len(pool),
        "text": (f"{len(chosen)} truths" + (f" ({epochs} epochs of standalone training each, {truth_seconds:.0f} s "
                                            f"of training in all, {trained} trained now)" if epochs else
                                            f" ({truth_seconds:.1f} s to obtain)") +
                 f"; signals of {len(pool)} candidate subnets: {signal_seconds:.1f} s"),
    }
    return Calibration(model, chosen, y, names, values, report)


_NOT_CV = {"tau": None, "ci": None, "note": "not computed (cross_validate_fit=False)"}


def _truths_of(truth_fn: Callable[[list[Arch]], np.ndarray], archs: list[Arch]) -> np.ndarray:
    y = np.asarray(truth_fn(archs), dtype=float).reshape(-1)
    if y.size != len(archs):
        raise ValueError(f"the truth source gave {y.size} values for {len(archs)} subnets")
    return y


def _choose_actively(pool: list[Arch], picked: list[int], y: np.ndarray, active: int,
                     regions: Sequence[Callable[[Arch], bool]] | None, kappa: float, model: Predictor,
                     truth_fn: Callable[[list[Arch]], np.ndarray]) -> tuple[list[int], np.ndarray]:
    """`active` more truths, a round at a time: refit on the truths so far (NaN ones left out), then per region the
    untried candidate of highest mean + kappa * std; returns (all picked pool indices, their truths)."""
    masks = [np.array(r.many(pool) if hasattr(r, "many") else [r(a) for a in pool], dtype=bool) for r in regions
             ] if regions else [np.ones(len(pool), bool)]
    picked, y = list(picked), np.asarray(y, dtype=float)
    rounds, start = 0, len(picked)
    while len(picked) < start + active:
        ok = np.isfinite(y)
        if ok.sum() < MIN_SUBNETS or np.ptp(y[ok]) == 0:
            break  # nothing to rank by yet: the report notes how many were chosen
        model.fit([pool[i] for i in np.asarray(picked)[ok]], y[ok])
        mean, std = model.predict(pool)
        score = mean + kappa * std
        taken = np.zeros(len(pool), bool)
        taken[picked] = True
        new: list[int] = []
        for k in range(len(masks)):  # rotate which region picks first, so a short last round is fair
            mask = masks[(rounds + k) % len(masks)] & ~taken
            if len(picked) + len(new) >= start + active or not mask.any():
                continue
            i = int(np.flatnonzero(mask)[np.argmax(score[mask])])
            new.append(i)
            taken[i] = True
        if not new:
            break  # every candidate of every region has a truth
        y = np.concatenate([y, _truths_of(truth_fn, [pool[i] for i in new])])
        picked += new
        rounds += 1
    return picked, y


class _Columns:
    """Some columns of a signal source (the same cache: nothing is computed twice)."""

    def __init__(self, source: Any, cols: Sequence[int]) -> None:
        self.source, self.cols = source, list(cols)
        self.names = [source.names[j] for j in self.cols]

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.asarray(self.source(archs), dtype=float)[:, self.cols]
