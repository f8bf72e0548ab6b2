"""Budgeted search over a space with Optuna: `search(space, objective=..., budgets=..., sampler=...)`.

```python
from oneshot import search
result = search("nb201", objective=my_lookup, budgets={"flops": [50e6, 100e6]}, sampler="predictor", n_trials=100,
                seed=0, storage="sqlite:///runs/study.db", study_name="nb201-lookup")
result.best(flops=100e6)   # best subnet under that budget, with its scores
result.pareto()            # accuracy vs cost front
```

How a search runs (one loop, ours, over `study.ask()` / `study.tell()`):

- Each trial suggests the space's active decisions (define-by-run, `oneshot.search_space`), giving one subnet.
- Its costs come from the fast cost model; a subnet over budget is never evaluated: the trial is told as complete
  with constraint values > 0 and the worst score seen (so TPE, GP and NSGA-II learn where the budget lies) and
  marked `infeasible`.
- A subnet evaluated before (by this study, an earlier run, another worker or another budget's study) is served
  from the cache: the trial is told as complete with the known score and marked `duplicate`.
- Only new subnets that fit are evaluated. `n_trials` counts those (distinct subnets evaluated, "queries") and is
  the study's target, not a per-call increment: re-running a killed search finishes it, and several workers
  sharing one study stop together at the target.
- The first `n_startup` subnets are uniform random ones that fit the budget and are new; after `max_rejects`
  rejected proposals in a row the loop evaluates one such subnet too, so a
  sampler stuck on a tight budget or on old subnets cannot stall the search.

Several budgets: `strategy="constrained"` (default, measured better; see benchmarks/bench_search.py) runs one
constrained study per budget, tightest first, each warm-started with every subnet already evaluated that fits it
and given an equal share of `n_trials`; `strategy="pareto"` runs one multi-objective study (score vs the budgeted
costs, capped at the loosest budget) and cuts its front per budget.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import optuna
from optuna.storages import BaseStorage
from tqdm.auto import tqdm
from optuna.trial import TrialState

from supernets.space import Arch, SearchSpace

from .budget import Budget, CostModel, check_reachable, parse_budget_text, parse_budgets
from .search_result import SearchRecord, SearchResult
from .search_samplers import (ArchSampler, SpaceExhausted, create_sampler, list_samplers, random_unseen,
                              supports_multi_objective)
from .search_space import TRIAL_ATTR, arch_from_trial, suggest_arch, trial_for

__all__ = ["search", "SearchResult", "SearchRecord", "STRATEGIES", "open_storage", "add_arguments", "run"]

log = logging.getLogger("oneshot.search")

STRATEGIES = ("constrained", "pareto")
DEFAULT_STRATEGY = "constrained"  # one constrained study per budget: better per query in our benchmark
# Measured best per query on the nb201 tables (benchmarks/bench_search.py, 20 seeds): beats random, REA and plain
# TPE at 25, 50 and 100 queries on all three tables; TPE with our loop ties REA at 100 queries on two of them.
DEFAULT_SAMPLER = "predictor"
DEFAULT_PARETO_SAMPLER = "tpe"  # multi-objective studies: the predictor sampler is single-objective
ATTR = TRIAL_ATTR  # user attr holding {arch, status, score, cost, seed} on every trial we tell

Objective = Callable[[Arch], float]


# =========================================================================== public API
def search(
    space_or_checkpoint: SearchSpace | str | Path | None,
    objective: Objective | str | Any = None,
    *,
    budgets: Mapping[str, float | Sequence[float]] | Sequence[Budget] | Budget | None = None,
    sampler: str | optuna.samplers.BaseSampler | None = None,
    n_trials: int = 100,
    seed: int = 0,
    storage: str | BaseStorage | None = None,
    study_name: str | None = None,
    strategy: str = DEFAULT_STRATEGY,
    run_dir: str | Path | None = None,
    costs: Mapping[str, Callable[[Arch], float] | Mapping[str, float]] | None = None,
    sampler_args: Mapping[str, Any] | None = None,
    n_startup: int = 10,
    max_rejects: int = 20,
    evaluate_args: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> SearchResult:
    """Search `space_or_checkpoint` for the best subnets within `budgets`; returns a `SearchResult`.

    Args:
        space_or_checkpoint: a `SearchSpace`, a registered space name (`"nb201"`), or a supernet checkpoint path
            (with `objective="supernet"`); None when the objective is `"predictor:PATH"` (its file names the space).
        objective: what to maximize for a subnet: a callable `arch -> float` (e.g. a lookup into a benchmark's
            table); `"supernet"`: holdout accuracy of the checkpoint's supernet after BN recalibration, through the
            cached evaluation table (`oneshot.evaluate`, `evaluate_args` passed on); a fitted predictor (its mean);
            `"predictor:PATH"`: a saved predictor file; `"synthetic:KIND"`: `predictors.synthetic` (for demos).
        budgets: cost limits, e.g. `{"flops": [50e6, 100e6]}` or `{"macs": 1e6, "params": 5e4}`; costs are
            `macs`, `flops`, `params` (per image) and the names in `costs`. None: unconstrained.
        sampler: `"predictor"`, `"tpe"`, `"gp"`, `"nsga2"`, `"random"`, `"rea"`, or an Optuna sampler. None (default):
            `"predictor"`, the best per query in benchmarks/bench_search.py, or `"tpe"` for `strategy="pareto"`
            (the predictor sampler is single-objective).
        n_trials: distinct subnets to evaluate in total (the target of the study, shared by its workers and by
            re-runs); with several budgets and `strategy="constrained"`, split evenly over them.
        seed: seeds this call's sampler and startup draws; give each parallel worker its own.
        storage: Optuna storage URL (`sqlite:///runs/s.db`, `postgresql://...`, `journal:PATH` for a journal
            file, `memory`) or storage object; None: `sqlite:///<run_dir>/study.db`.
        study_name: None derives `<space>-<objective>`; with several budgets each study adds `[<budget>]`.
        strategy: `"constrained"` or `"pareto"` (see the module docstring); only matters for several budgets or
            to force a multi-objective study.
        run_dir: folder for the default SQLite file and `search.json`; default `runs/<study_name>`.
        costs: extra costs budgets may name, e.g. `{"latency": fn_or_table}` (units are the caller's).
        sampler_args: settings for a named sampler, e.g. `{"population_size": 10}` for rea.
        n_startup: random subnets evaluated before the sampler models anything.
        max_rejects: rejected proposals (over budget or already evaluated) in a row before a random new subnet
            is forced.
        evaluate_args: passed to `oneshot.evaluate` by the `"supernet"` objective (data, calibration settings).
        progress: a progress bar per study (subnets evaluated by every worker, best score so far).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {list(STRATEGIES)}")
    if sampler is None:
        sampler = default_sampler(strategy)
    if isinstance(sampler, str) and sampler not in list_samplers():
        raise ValueError(f"unknown sampler {sampler!r}; allowed: {list_samplers()}")
    space, fn, objective_name = resolve_objective(space_or_checkpoint, objective, evaluate_args)
    cost_model = CostModel(costs)
    budget_list = parse_budgets(budgets, cost_model.keys)
    check_reachable(space, budget_list, cost_model)

    study_name = study_name or f"{space.name}-{objective_name}"
    if storage is None:
        run_dir = Path(run_dir) if run_dir is not None else Path("runs") / _safe(study_name)
    storage_obj, storage_url = open_storage(storage, run_dir)
    multi = strategy == "pareto"
    plans = _plan_studies(study_name, budget_list, n_trials, multi)
    sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
    settings = {
        "space": space.name, "fingerprint": space.fingerprint, "objective": objective_name,
        "sampler": sampler_name, "sampler_args": dict(sampler_args or {}), "seed": seed, "n_trials": n_trials,
        "n_startup": n_startup, "max_rejects": max_rejects, "strategy": "pareto" if multi else "constrained",
        "budgets": [str(b) for b in budget_list], "storage": _redact(storage_url), "study_name": study_name,
        "code_version": code_version(),
    }
    seeds = np.random.SeedSequence(seed).spawn(2 * len(plans))
    cache: dict[Arch, float] = {}
    studies = []
    with _quiet_optuna():
        for i, (name, budget, objectives, target) in enumerate(plans):
            samp = _make_sampler(sampler, space, budget, cost_model, int(seeds[2 * i].generate_state(1)[0]),
                                 n_startup, dict(sampler_args or {}), multi)
            studies.append(_open_study(storage_obj, name, space, objectives, settings, samp))
        for study in studies:  # evaluations of every study of this search are free knowledge for all
            _fill_cache(study, space, cache)
        for i, ((name, budget, objectives, target), study) in enumerate(zip(plans, studies)):
            if not multi and len(plans) > 1:
                _warm_start(study, space, budget, cache, cost_model, seed)
            loop = _StudyLoop(study, space, fn, budget, objectives, cost_model, cache, target, n_startup,
                              max_rejects, seed, np.random.default_rng(seeds[2 * i + 1]))
            with tqdm(total=target, desc=f"search {budget}", unit="subnet", disable=not progress,
                      dynamic_ncols=True) as bar:
                loop.run(bar)
    result = collect(space, studies, budget_list, settings)
    if storage is None or run_dir is not None:
        result.save(Path(run_dir) / "search.json")  # type: ignore[arg-type]
    return result


def collect(space: SearchSpace, studies: Sequence[optuna.Study], budgets: Sequence[Budget] = (),
            settings: Mapping[str, Any] | None = None) -> SearchResult:
    """The evaluated subnets of some studies (e.g. reopened from storage) as a `SearchResult`."""
    rows = []
    for si, study in enumerate(studies):
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            info = t.user_attrs.get(ATTR, {})
            if info.get("status") != "evaluated":
                continue
            stamp = t.datetime_complete.timestamp() if t.datetime_complete else math.inf
            rows.append((stamp, si, t.number, info, study.study_name))
    rows.sort(key=lambda r: r[:3])
    records, seen = [], set()
    for _, _, number, info, name in rows:
        arch = Arch.from_str(space, info["arch"])
        if arch in seen:  # two workers raced on one subnet: keep the first
            continue
        seen.add(arch)
        records.append(SearchRecord(arch, float(info["score"]), dict(info["cost"]), number, name,
                                    info.get("seed"), len(records)))
    return SearchResult(space, records, budgets, settings, studies)


# =========================================================================== objective and space
def resolve_objective(target: SearchSpace | str | Path | None, objective: Any,
                      evaluate_args: Mapping[str, Any] | None = None) -> tuple[SearchSpace, Objective, str]:
    """(space, `arch -> score`, short name for study names) from the user's target and objective arguments."""
    if isinstance(objective, str) and objective.startswith("predictor:"):
        from predictors import load_predictor

        pred = load_predictor(objective.split(":", 1)[1])
        space = pred.space if target is None else _space_of(target)
        _check_same_space(space, pred.space, "predictor file")
        return space, _predictor_mean(pred), f"predictor-{pred.name}"
    if objective is None or objective == "supernet":
        if not isinstance(target, (str, Path)) or not Path(target).is_file():
            raise ValueError("objective 'supernet' needs a checkpoint file as the first argument "
                             f"(got {target!r}); for a space, give objective=callable, 'predictor:PATH' or "
                             "'synthetic:additive'")
        return _supernet_objective(Path(target), dict(evaluate_args or {}))
    space = _space_of(target)
    if isinstance(objective, str):
        if objective.startswith("synthetic:"):
            from predictors.synthetic import make_objective

            kind, *rest = objective.split(":", 1)[1].split(",")
            noise = float(rest[0]) if rest else 0.0
            return space, make_objective(space, kind, noise=noise, seed=0), f"synthetic-{kind}"
        raise ValueError(f"unknown objective {objective!r}; give a callable arch -> float, a fitted predictor, "
                         "'supernet' (with a checkpoint), 'predictor:PATH' or 'synthetic:additive|pairwise'")
    if hasattr(objective, "predict") and hasattr(objective, "fit"):
        _check_same_space(space, objective.space, "predictor")
        return space, _predictor_mean(objective), f"predictor-{getattr(objective, 'name', 'model')}"
    if callable(objective):
        name = getattr(objective, "__name__", type(objective).__name__)
        return space, objective, "objective" if name == "<lambda>" else _safe(name)
    raise TypeError(f"objective must be callable or a string, got {type(objective).__name__}")


def _space_of(target: SearchSpace | str | Path | None) -> SearchSpace:
    if isinstance(target, SearchSpace):
        return target
    if isinstance(target, str) and not Path(target).is_file():
        from supernets.registry import get_space, list_supernets

        if target not in list_supernets():
            raise ValueError(f"unknown space {target!r}: not a file and not a registered space {list_supernets()}")
        return get_space(target)
    if isinstance(target, (str, Path)):
        return _checkpoint_space(Path(target))
    raise TypeError(f"expected a SearchSpace, a space name or a checkpoint path, got {type(target).__name__}")


def _check_same_space(space: SearchSpace, other: SearchSpace, what: str) -> None:
    if space.fingerprint != other.fingerprint:
        raise ValueError(f"the {what} is for space {other.name!r} ({other.fingerprint}), not {space.name!r} "
                         f"({space.fingerprint})")


def _predictor_mean(pred: Any) -> Objective:
    def predicted(arch: Arch) -> float:
        mean, _ = pred.predict([arch])
        return float(np.asarray(mean).reshape(-1)[0])

    return predicted


def _checkpoint_space(path: Path) -> SearchSpace:
    from oneshot.checkpoint import read_checkpoint
    from supernets.registry import space_from_dict

    return space_from_dict(read_checkpoint(path)["oneshot"]["space"])


def _supernet_objective(path: Path, evaluate_args: dict[str, Any]) -> tuple[SearchSpace, Objective, str]:
    """Holdout accuracy after BN recalibration, through `oneshot.evaluate` and the checkpoint's result table.

    The supernet and its data are loaded once; each subnet is then evaluated (or read from
    `<checkpoint dir>/evaluations.jsonl` when an earlier run evaluated it with the same settings). `evaluate_args`
    go to `oneshot.evaluate.evaluate` (e.g. `calib_batches`, `batch_size`, `table`, `data` overrides).
    """
    import torch

    from oneshot.checkpoint import load_supernet
    from oneshot.data import SplitDataModule, datamodule_from_info
    from oneshot.evaluate import TABLE_NAME, evaluate

    supernet, info = load_supernet(path)
    args = dict(evaluate_args)
    data = args.pop("data", None)
    dm = data if isinstance(data, SplitDataModule) else datamodule_from_info(info["data"], **(data or {}))
    args.setdefault("table", path.parent / TABLE_NAME)
    args.setdefault("progress", False)

    def supernet_holdout_acc(arch: Arch) -> float:
        with torch.no_grad():
            return float(evaluate(supernet, [arch], data=dm, **args)[0]["holdout_acc"])

    return supernet.space, supernet_holdout_acc, f"supernet-{_safe(path.stem)}"


# =========================================================================== storage and studies
def default_sampler(strategy: str = "constrained") -> str:
    """The sampler used when none is named: measured best per query (benchmarks/bench_search.py)."""
    return DEFAULT_PARETO_SAMPLER if strategy == "pareto" else DEFAULT_SAMPLER


def open_storage(storage: str | BaseStorage | None, run_dir: str | Path | None = None) -> tuple[BaseStorage, str]:
    """An Optuna storage and its URL from a URL, a storage object, or None (SQLite file in `run_dir`)."""
    if isinstance(storage, BaseStorage):
        return storage, type(storage).__name__
    if storage is None:
        if run_dir is None:
            raise ValueError("give a storage URL or a run_dir for the default SQLite file")
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(run_dir) / 'study.db'}"
    if storage in ("memory", ":memory:"):
        return optuna.storages.InMemoryStorage(), "memory"
    if storage.startswith("journal:"):
        path = re.sub(r"^journal:(//)?", "", storage)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(path)), storage
    kwargs: dict[str, Any] = {}
    if storage.startswith("sqlite:///"):
        Path(storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # Workers share the file: wait for its lock instead of failing after SQLite's default 5 s.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    # Workers started together on a fresh database race to create its schema; the loser sees "table ... already
    # exists" (PostgreSQL: a duplicate key in its catalog) once the winner is done, and opening it again succeeds.
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(storage, **kwargs), storage
        except ImportError as exc:
            hint = " (pip install 'oneshot[postgres]')" if storage.startswith("postgres") else ""
            raise ValueError(f"storage {_redact(storage)} needs a database driver that is not installed{hint}: "
                             f"{exc}") from exc
        except Exception as exc:  # sqlalchemy.exc.OperationalError / IntegrityError, not imported here on purpose
            text = str(exc).lower()
            if attempt < 4 and ("already exists" in text or "unique constraint" in text):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise ValueError(f"cannot open storage {_redact(storage)}: {first[0] if first else type(exc).__name__}"
                             ) from exc
    raise AssertionError("unreachable")


def _plan_studies(name: str, budgets: list[Budget], n_trials: int,
                  multi: bool) -> list[tuple[str, Budget, tuple[str, ...], int]]:
    """(study name, budget, objective names, query target) per study."""
    if multi:
        keys = sorted({k for b in budgets for k in b.keys}) or ["flops"]
        cap = Budget.of(**{k: max(b.as_dict().get(k, -math.inf) for b in budgets) for k in
                           {k for b in budgets for k in b.keys}})
        return [(f"{name}[pareto]", cap, ("score", *keys), n_trials)]
    if len(budgets) == 1:
        return [(name, budgets[0], ("score",), n_trials)]
    share = [n_trials // len(budgets) + (1 if i < n_trials % len(budgets) else 0) for i in range(len(budgets))]
    return [(f"{name}[{b}]", b, ("score",), n) for b, n in zip(budgets, share) if n > 0]


def _open_study(storage: BaseStorage, name: str, space: SearchSpace, objectives: tuple[str, ...],
                settings: Mapping[str, Any], sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    directions = ["maximize"] + ["minimize"] * (len(objectives) - 1)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True,
                                    sampler=sampler)
    except ValueError as exc:
        raise ValueError(f"cannot open study {name!r}: {exc}") from None
    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "maximize"
                                  else optuna.study.StudyDirection.MINIMIZE for d in directions]:
        raise ValueError(f"study {name!r} exists with {len(study.directions)} objective(s); this search needs "
                         f"{objectives}: use another study_name")
    attrs = study.user_attrs
    if "fingerprint" in attrs and attrs["fingerprint"] != space.fingerprint:
        raise ValueError(f"study {name!r} belongs to space {attrs.get('space')!r} ({attrs['fingerprint']}), not "
                         f"{space.name!r} ({space.fingerprint}); use another study_name")
    if "fingerprint" not in attrs:
        for k, v in settings.items():
            study.set_user_attr(k, v)
        study.set_user_attr("objectives", list(objectives))
    return study


def _fill_cache(study: optuna.Study, space: SearchSpace, cache: dict[Arch, float]) -> None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = t.user_attrs.get(ATTR, {})
        if info.get("status") == "evaluated":
            cache.setdefault(Arch.from_str(space, info["arch"]), float(info["score"]))


def _warm_start(study: optuna.Study, space: SearchSpace, budget: Budget, cache: Mapping[Arch, float],
                costs: CostModel, seed: int) -> None:
    """Add every already evaluated subnet that fits `budget` and that the study lacks, as a known result."""
    present = {a for t in study.get_trials(deepcopy=False) if (a := arch_from_trial(space, t)) is not None}
    new = []
    for arch, score in cache.items():
        if arch in present or not math.isfinite(score):
            continue
        c = costs(arch)
        if budget.admits(c):
            info = {"arch": str(arch), "status": "cached", "score": score, "cost": c, "seed": seed}
            new.append(trial_for(arch, score, {ATTR: info}, budget.violations(c)))
    if new:
        study.add_trials(new)
        log.info("study %s: warm start with %d subnets evaluated earlier", study.study_name, len(new))


def _make_sampler(sampler: str | optuna.samplers.BaseSampler, space: SearchSpace, budget: Budget,
                  costs: CostModel, seed: int, n_startup: int, args: dict[str, Any],
                  multi: bool) -> optuna.samplers.BaseSampler:
    def feasible(arch: Arch) -> bool:
        return budget.admits(costs(arch))

    if isinstance(sampler, str):
        samp = create_sampler(sampler, space, seed=seed, n_startup=n_startup, feasible=feasible, **args)
    else:
        samp = sampler
        if isinstance(samp, ArchSampler):
            samp.feasible = feasible
    if multi and not supports_multi_objective(samp):
        raise ValueError(f"sampler {sampler if isinstance(sampler, str) else samp} cannot drive the multi-objective "
                         "study of strategy='pareto'; use tpe, nsga2, gp or random, or strategy='constrained'")
    return samp


# =========================================================================== the loop
class _StudyLoop:
    """Ask, check the budget and the cache, evaluate, tell: until the study holds `target` evaluated subnets."""

    def __init__(self, study: optuna.Study, space: SearchSpace, objective: Objective, budget: Budget,
                 objectives: tuple[str, ...], costs: CostModel, cache: dict[Arch, float], target: int,
                 n_startup: int, max_rejects: int, seed: int, rng: np.random.Generator) -> None:
        self.study, self.space, self.objective, self.budget = study, space, objective, budget
        self.cost_keys = objectives[1:]  # minimized alongside the score in a multi-objective study
        self.costs, self.cache, self.target = costs, cache, target
        self.n_startup, self.max_rejects, self.seed, self.rng = n_startup, max_rejects, seed, rng
        self._synced: set[int] = set()
        self._scan_from = 0
        self.n_evaluated = 0  # subnets evaluated in this study, by any worker
        self.n_known = 0  # feasible subnets with a score in this study (evaluated or warm start)
        self.worst, self.best = math.inf, -math.inf

    def sync(self) -> tuple[int, set[Arch]]:
        """Read newly finished trials of any worker into the cache; returns (trials in flight, their subnets)."""
        in_flight: set[Arch] = set()
        n_in_flight = 0
        trials = self.study.get_trials(deepcopy=False)  # in trial-number order
        start = self._scan_from
        while self._scan_from < len(trials) and trials[self._scan_from].state.is_finished():
            self._scan_from += 1  # everything before this index is finished, so read once
        for t in trials[start:]:
            if t.state in (TrialState.RUNNING, TrialState.WAITING):
                n_in_flight += 1
                if (a := arch_from_trial(self.space, t)) is not None:
                    in_flight.add(a)
            elif t._trial_id not in self._synced and t.state.is_finished():
                self._synced.add(t._trial_id)
                info = t.user_attrs.get(ATTR, {})
                status = info.get("status")
                self.n_evaluated += status == "evaluated"
                if status in ("evaluated", "cached") and t.state == TrialState.COMPLETE:
                    self.n_known += 1
                    self.worst = min(self.worst, float(info["score"]))
                    self.best = max(self.best, float(info["score"]))
                    self.cache.setdefault(Arch.from_str(self.space, info["arch"]), float(info["score"]))
        return n_in_flight, in_flight

    def close_orphans(self) -> int:
        """Fail trials left RUNNING by a dead process of this machine (a killed search); returns how many."""
        n = 0
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, _, pid = str(t.user_attrs.get(WORKER, "")).rpartition(":")
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                try:
                    self.study.tell(t.number, state=TrialState.FAIL)
                    n += 1
                except (ValueError, RuntimeError):  # finished meanwhile
                    pass
        if n:
            log.info("study %s: closed %d trial(s) left running by a killed search", self.study.study_name, n)
        return n

    def _evaluate_random(self, arch: Arch) -> None:
        c = self.costs(arch)
        score = self._score(arch)
        info = {"arch": str(arch), "cost": c, "seed": self.seed, "status": "evaluated", "score": score,
                "source": "random"}
        self.study.add_trial(trial_for(arch, [score, *(c[k] for k in self.cost_keys)], {ATTR: info},
                                       self.budget.violations(c)))

    def _score(self, arch: Arch) -> float:
        score = float(self.objective(arch))
        if not math.isfinite(score):
            raise ValueError(f"objective returned {score} for subnet {str(arch)!r}")
        self.cache[arch] = score
        return score

    def _claimed_earlier(self, number: int, arch: Arch, wait_s: float = 5.0) -> bool:
        """Whether a trial numbered before `number` (another worker's) is evaluating or has evaluated `arch`.

        Checked after this trial's parameters are written, and the lower trial number wins. A lower-numbered trial
        still being suggested (its worker's sampler is proposing) is waited for, up to `wait_s`, so that two
        workers proposing one subnet at the same moment never both evaluate it. Trials started over a minute ago
        without parameters are left behind by dead workers and not waited for.
        """
        deadline = time.monotonic() + wait_s
        while True:
            pending = False
            now = datetime.datetime.now()
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)):
                if t.number >= number:
                    continue
                other = arch_from_trial(self.space, t)
                if other is None:
                    recent = t.datetime_start is not None and (now - t.datetime_start).total_seconds() < 60
                    pending |= t.state == TrialState.RUNNING and recent
                elif other == arch and (t.state == TrialState.RUNNING or t.user_attrs.get(ATTR, {}).get("status")
                                        in ("evaluated", "cached", "duplicate")):
                    return True
            if not pending or time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def feasible(self, arch: Arch) -> bool:
        return self.budget.admits(self.costs(arch))

    def run(self, bar: Any = None) -> int:
        """Evaluate until the target, updating the progress `bar`; returns how many subnets this process evaluated."""
        done_here, rejects = 0, 0
        self.close_orphans()
        while True:
            n_in_flight, in_flight = self.sync()
            if bar is not None and bar.n != min(self.n_evaluated, self.target):  # counts every worker's subnets
                bar.n = min(self.n_evaluated, self.target)
                if math.isfinite(self.best):
                    bar.set_postfix(best=f"{self.best:.4g}", refresh=False)
                bar.refresh()
            if self.n_evaluated >= self.target:
                break
            if self.n_known + n_in_flight < self.n_startup or rejects >= self.max_rejects:
                # Startup, or a sampler stuck on old or over-budget subnets: a random new one that fits,
                # evaluated here and added as a finished trial (one atomic insert; `enqueue_trial` would let two
                # workers on SQLite pop the same waiting trial).
                try:
                    arch = random_unseen(self.space, self.rng, set(self.cache) | in_flight, self.feasible)
                except SpaceExhausted as exc:
                    log.info("study %s: %s", self.study.study_name, exc)
                    break
                self._evaluate_random(arch)
                done_here += 1
                rejects = 0
                continue
            trial = self.study.ask()
            try:
                arch = suggest_arch(trial, self.space)
            except SpaceExhausted as exc:
                self.study.tell(trial, state=TrialState.FAIL)
                log.info("study %s: %s", self.study.study_name, exc)
                break
            trial.set_user_attr(WORKER, _worker_id())  # lets a re-run close this trial if this process dies
            c = self.costs(arch)
            info: dict[str, Any] = {"arch": str(arch), "cost": c, "seed": self.seed}
            violations = self.budget.violations(c)
            for key, v in violations.items():
                trial.set_constraint(key, v)
            cost_values = [c[k] for k in self.cost_keys]
            if any(v > 0 for v in violations.values()):
                # Never evaluated. The worst score seen keeps GP-like objective models sane; constraint values
                # > 0 tell TPE, GP and NSGA-II that the subnet is infeasible whatever its score.
                penalty = self.worst if math.isfinite(self.worst) else 0.0
                trial.set_user_attr(ATTR, {**info, "status": "infeasible"})
                self.study.tell(trial, [penalty, *cost_values])
                rejects += 1
                continue
            if arch in self.cache or arch in in_flight or self._claimed_earlier(trial.number, arch):
                # Served from the cache (told as complete with the known score, so the sampler's model sees it
                # again: measured better for TPE than telling it pruned), or being evaluated by another worker
                # right now (pruned: no score yet). Not evaluated again either way.
                self.sync()
                known = self.cache.get(arch)
                trial.set_user_attr(ATTR, {**info, "status": "duplicate", "score": known})
                if known is None:
                    self.study.tell(trial, state=TrialState.PRUNED)
                else:
                    self.study.tell(trial, [known, *cost_values])
                rejects += 1
                continue
            try:
                score = self._score(arch)
            except BaseException:
                self.study.tell(trial, state=TrialState.FAIL)  # not left RUNNING when interrupted
                raise
            trial.set_user_attr(ATTR, {**info, "status": "evaluated", "score": score})
            self.study.tell(trial, [score, *cost_values])
            done_here += 1
            rejects = 0
        return done_here


# =========================================================================== helpers
WORKER = "oneshot_worker"  # user attr: "host:pid" of the process that ran the trial


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs a line per trial at INFO; a search of hundreds of trials says what matters itself."""
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-") or "search"


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def code_version() -> str:
    """oneshot's version plus the git commit of the checkout, when there is one."""
    from oneshot import __version__

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


# =========================================================================== CLI
def add_arguments(parser: Any) -> None:
    parser.add_argument("target", help="supernet checkpoint (objective 'supernet') or a registered space name")
    parser.add_argument("--objective", default=None,
                        help="supernet (default for a checkpoint) | predictor:PATH | synthetic:additive|pairwise")
    parser.add_argument("--budget", action="append", default=[], metavar="COST=LIMIT[,LIMIT...]",
                        help="e.g. flops=50e6,100e6 (repeat for more costs: params=1e6)")
    parser.add_argument("--sampler", default=None,
                        help=f"one of {list_samplers()}; default {DEFAULT_SAMPLER} ({DEFAULT_PARETO_SAMPLER} for pareto)")
    parser.add_argument("--n-trials", type=int, default=100, help="distinct subnets to evaluate in total")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=STRATEGIES)
    parser.add_argument("--storage", default=None, help="Optuna storage URL; default SQLite in the run folder")
    parser.add_argument("--study-name", default=None)
    parser.add_argument("--run-dir", default=None, help="folder for study.db and search.json")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--latency", default=None, metavar="TABLE",
                        help="latency table from `oneshot latency`: lets --budget name latency=MS")


def run(args: Any) -> int:
    t0 = time.perf_counter()
    objective = args.objective
    if objective is None and not Path(args.target).is_file():
        raise ValueError(f"{args.target!r} is not a checkpoint file: a space needs --objective predictor:PATH or "
                         "synthetic:additive|pairwise")
    costs = {}
    if args.latency:
        from .latency import LatencyModel

        costs["latency"] = LatencyModel.from_table(args.latency)
        print(costs["latency"].summary())
    result = search(args.target, objective=objective, budgets=parse_budget_text(args.budget) or None,
                    costs=costs or None, progress=not args.no_progress, sampler=args.sampler, n_trials=args.n_trials, seed=args.seed, storage=args.storage,
                    study_name=args.study_name, strategy=args.strategy, run_dir=args.run_dir)
    print(result.summary())
    front = result.pareto()
    print(f"pareto front (score vs flops): {len(front)} subnets")
    for r in front:
        print(f"  {r}")
    print(f"done in {time.perf_counter() - t0:.1f} s; settings: sampler={result.settings['sampler']} seed={args.seed} "
          f"storage={result.settings['storage']}")
    return 0


class _CallableModule(types.ModuleType):
    """Once this module is imported, `oneshot.search` (the package attribute) is the module, not the function;
    calling the module runs `search`, so `from oneshot import search; search(...)` works either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
