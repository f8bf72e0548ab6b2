"""Budgeted search over a space with Optuna: `search(space, objective=..., budgets=..., sampler=...)`.

```python
from oneshot import search
result = search("nb201", objective=my_lookup, budgets={"flops": [50e6, 100e6]}, sampler="predictor", n_trials=100,
                seed=0, storage="sqlite:///runs/study.db", study_name="nb201-lookup")
result.best(flops=100e6)   # best subnet under that budget, with its scores
result.pareto()            # accuracy vs cost front
```

How a search runs (one loop per study, `oneshot.study.loop`, over `study.ask()` / `study.tell()`):

- Each trial suggests the space's active decisions (define-by-run, `oneshot.study.space`), giving one subnet.
- Its costs come from the fast cost model; a subnet over budget is never evaluated: the trial is told as complete
  with constraint values > 0 and the worst score seen (so TPE, GP and NSGA-II learn where the budget lies) and
  marked `infeasible`.
- A subnet evaluated before (by this study, an earlier run, another worker or another budget's study) is served
  from the cache: the trial is told as complete with the known score and marked `duplicate`. The cache is keyed
  by the space's canonical form (`space.canonical`), so another spelling of an evaluated network is a duplicate.
- Only new subnets that fit are evaluated. `n_trials` counts those (distinct subnets evaluated, "queries") and is
  the study's target, not a per-call increment: re-running a killed search finishes it, several workers
  sharing one study stop together at the target, and a study that already holds more reports its first `n_trials`
  (a search's result always answers "what did n_trials queries find").
- A study is identified by its name, and a saved one records what defines it (space, objective identity, budget,
  strategy, sampler, seed): resuming it with anything else is an error that names the difference. The default
  name holds the space, objective, budgets and seed; the API keeps studies in memory unless given a storage or
  a run folder.
- `start` subnets (e.g. the networks a calibration trained, whose accuracy is known) are evaluated first, those
  that fit each budget; they count towards `n_trials`.
- The first `n_startup` subnets are uniform random ones that fit the budget and are new; after `max_rejects`
  rejected proposals in a row the loop evaluates one such subnet too, so a
  sampler stuck on a tight budget or on old subnets cannot stall the search. Where random draws find nothing
  (a budget only a handful of subnets meet), the subnets around the cheapest one are listed instead.

Several budgets: `strategy="constrained"` (default, measured better; see benchmarks/bench_search.py) runs one
constrained study per budget, tightest first, each warm-started with every subnet already evaluated that fits it
and given an equal share of `n_trials`; `strategy="pareto"` runs one multi-objective study (score vs the budgeted
costs, capped at the loosest budget) and cuts its front per budget.

The objective is a callable built by the scoring layer (`oneshot.score.objectives`) or given by the user: search
never loads a checkpoint, data or a predictor file itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from supernets.space import Arch, SearchSpace

from oneshot.console import progress_bar
from oneshot.score.objectives import Objective, resolve_objective, safe_name
from oneshot.version import code_version

from .budget import Budget, BudgetCheck, CostModel, check_reachable, parse_budgets
from .defaults import DEFAULT_PARETO_SAMPLER, DEFAULT_SAMPLER, DEFAULT_STRATEGY, STRATEGIES, default_sampler
from .loop import ATTR, WORKER, StudyLoop
from .results import SearchRecord, SearchResult, collect
from .search_samplers import (ArchSampler, create_search_sampler, list_search_samplers,
                              supports_multi_objective)
from .space import arch_from_trial, trial_for
from .storage import StorageError, open_storage, redact, retry_seconds, storage_failure

__all__ = ["search", "collect", "default_sampler", "default_study_name", "SearchResult", "SearchRecord", "STRATEGIES", "DEFAULT_STRATEGY",
           "DEFAULT_SAMPLER", "DEFAULT_PARETO_SAMPLER"]

log = logging.getLogger("oneshot.search")


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
    new_study: bool = False,
    strategy: str = DEFAULT_STRATEGY,
    run_dir: str | Path | None = None,
    costs: Mapping[str, Callable[[Arch], float] | Mapping[str, float]] | None = None,
    sampler_args: Mapping[str, Any] | None = None,
    n_startup: int = 10,
    max_rejects: int = 20,
    evaluate_args: Mapping[str, Any] | None = None,
    progress: bool = False,
    verbose: bool | None = None,
    proxies: Any = None,
    start: Sequence[Arch | str] | None = None,
) -> SearchResult:
    """Search `space_or_checkpoint` for the best subnets within `budgets`; returns a `SearchResult`.

    Args:
        space_or_checkpoint: a `SearchSpace`, a registered space name (`"nb201"`), or a supernet checkpoint path
            (with `objective="supernet"`); None when the objective is `"predictor:PATH"` (its file names the space).
        objective: what to maximize for a subnet: a callable `arch -> float` (e.g. a lookup into a benchmark's
            table; a saved study knows it by its qualified name and its `identity` attribute if it has one); `"supernet"`: holdout accuracy of the checkpoint's supernet after BN recalibration, through the
            cached evaluation table (`oneshot.score.evaluate`, `evaluate_args` passed on); a fitted predictor (its
            mean);
            `"predictor:PATH"`: a saved predictor file; `"synthetic:KIND"`: `predictors.synthetic` (for demos).
        budgets: cost limits, e.g. `{"flops": [50e6, 100e6]}` or `{"macs": 1e6, "params": 5e4}`; costs are
            `macs`, `flops`, `params` (per image) and the names in `costs`. None: unconstrained.
        sampler: `"predictor"`, `"tpe"`, `"gp"`, `"nsga2"`, `"random"`, `"rea"`, or an Optuna sampler. None (default):
            `"predictor"`, the best per query in benchmarks/bench_search.py, or `"tpe"` for `strategy="pareto"`
            (the predictor sampler is single-objective).
        n_trials: distinct subnets the study evaluates in total (its target, shared by its workers and by re-runs:
            a killed search re-run finishes the same study); with several budgets and `strategy="constrained"`,
            split evenly over them. A study that already holds more returns its first `n_trials` and evaluates
            nothing (it says so).
        seed: seeds this call's sampler and startup draws. Part of the default study name (two seeds are two
            studies); workers sharing one named study each give their own.
        storage: Optuna storage URL (`sqlite:///runs/s.db`, `postgresql://...`, `journal:PATH` for a journal
            file, `memory`) or storage object; None: `sqlite:///<run_dir>/study.db` when `run_dir` is given, else
            in memory (nothing saved, as in Optuna).
        study_name: None derives `<space>-<objective>-<budgets>-seed<seed>`; with several budgets each study adds
            `[<budget>]`. A saved study records what defines it (space, objective identity, budgets, strategy,
            sampler and its settings, seed): resuming it with other settings is an error that names them.
        new_study: start a new study under a free name (`<name>-2`, `-3`, ...) even if one exists; nothing is
            deleted.
        strategy: `"constrained"` or `"pareto"` (see the module docstring); only matters for several budgets or
            to force a multi-objective study.
        run_dir: folder for the default SQLite file and `search.json`; `{study}` in it is replaced by the study
            name (the CLI's default is `runs/{study}`).
        costs: extra costs budgets may name, e.g. `{"latency": fn_or_table}` (units are the caller's).
        sampler_args: settings for a named sampler, e.g. `{"population_size": 10}` for rea.
        n_startup: random subnets evaluated before the sampler models anything.
        max_rejects: rejected proposals (over budget or already evaluated) in a row before a random new subnet
            is forced.
        evaluate_args: passed to `oneshot.score.evaluate` by the `"supernet"` objective (data, calibration settings).
        progress: a progress bar per study (subnets evaluated by every worker, best score so far).
        verbose: print a line when a saved study is resumed: its name, where it is, how many subnets it holds
            (None: as `progress`; always logged to the `oneshot.search` logger).
        proxies: zero-cost proxy scores (e.g. `oneshot.score.proxy_table.ProxyLookup`) for a `"predictor:PATH"`
            objective fitted with them (its encoding has `zc`); the file is still what identifies the study.
        start: subnets (or their strings) evaluated first, before the random startup ones, those that fit each
            budget: e.g. a calibration's trained networks (`objective.measured`), whose truth the objective knows
            and which search should not miss. Part of the study identity.
    """
    _check_int("n_trials", n_trials, 1)
    _check_int("seed", seed, 0)
    _check_int("n_startup", n_startup, 0)
    _check_int("max_rejects", max_rejects, 1)
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise TypeError(f"study_name must be a non-empty string or None, got {study_name!r}")
    if not isinstance(new_study, bool):
        raise TypeError(f"new_study must be True or False, got {new_study!r}")
    if sampler_args is not None and not isinstance(sampler_args, Mapping):
        raise TypeError(f"sampler_args must be a mapping, got {type(sampler_args).__name__}")
    if sampler_args and (reserved := sorted({"seed", "n_startup", "feasible"} & set(sampler_args))):
        raise ValueError(f"sampler_args may not set {reserved}: give search's own seed= and n_startup= arguments")
    if run_dir is not None and not isinstance(run_dir, (str, Path)):
        raise TypeError(f"run_dir must be a folder path, got {type(run_dir).__name__}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {list(STRATEGIES)}")
    if sampler is None:
        sampler = default_sampler(strategy)
    if isinstance(sampler, str) and sampler not in list_search_samplers():
        raise ValueError(f"unknown sampler {sampler!r}; allowed: {list_search_samplers()}")
    if not isinstance(sampler, (str, optuna.samplers.BaseSampler)):
        raise TypeError(f"sampler must be a name or an Optuna sampler, got {type(sampler).__name__}")
    cost_model = CostModel(costs)
    resolved = resolve_objective(space_or_checkpoint, objective, evaluate_args, proxies=proxies)
    space, fn = resolved.space, resolved.fn
    first = _start_archs(space, start)
    budget_list = parse_budgets(budgets, cost_model.keys)
    check_reachable(space, budget_list, cost_model)

    multi = strategy == "pareto"
    derived = study_name is None
    base = study_name or default_study_name(space, resolved.name, budget_list, seed)
    if run_dir is not None:
        run_dir = Path(str(run_dir).replace("{study}", safe_name(base)))
    # A storage whose connection is lost mid-search (a database server restarting) is retried with backoff for
    # retry_seconds(), then the search starts again exactly as a re-run would (the studies resume; subnets already
    # told are not evaluated again). Any other storage failure, or one on the first open, is one line at once.
    state: dict[str, Any] = {"base": base, "new_study": new_study, "where": None, "retry": False}
    window, waited, delay, lost = retry_seconds(), 0.0, 0.5, None
    while True:
        try:
            result = _run_studies(state, storage, run_dir, space, fn, resolved, budget_list, cost_model, sampler,
                                  sampler_args, seed, n_trials, n_startup, max_rejects, multi, derived, progress,
                                  verbose, first)
        except Exception as exc:
            failure = storage_failure(exc, state["where"] or "?")
            if failure is None:
                raise
            if not failure.transient or state["where"] is None or waited >= window:
                if lost is None:
                    raise failure from None
                raise StorageError(failure.url, f"{failure.cause} (still failing after {waited:.0f} s of retries)",
                                   doing="reach") from None
            lost = failure
            print(f"storage {failure.url}: connection lost ({failure.cause}); retrying in {delay:.1f} s "
                  f"(for up to {window:.0f} s in all)", file=sys.stderr, flush=True)
            time.sleep(delay)
            waited, delay = waited + delay, min(2 * delay, 8.0)
            state["retry"] = True
            continue
        if lost is not None:
            print(f"storage {state['where']}: reconnected; the search resumed as a re-run does", file=sys.stderr,
                  flush=True)
        return result


def _run_studies(state: dict[str, Any], storage: Any, run_dir: Path | None, space: SearchSpace, fn: Any,
                 resolved: Any, budget_list: list[Budget], cost_model: CostModel, sampler: Any,
                 sampler_args: Mapping[str, Any] | None, seed: int, n_trials: int, n_startup: int, max_rejects: int,
                 multi: bool, derived: bool, progress: bool, verbose: bool | None,
                 start: list[Arch]) -> SearchResult:
    """Open the storage and the studies, and run each study's loop to its target (one attempt of `search`)."""
    old = state.get("storage_obj")
    if old is not None and hasattr(old, "engine"):  # a lost server's pooled connections are dead: new ones
        with suppress(Exception):
            old.engine.dispose()
    storage_obj, storage_url = open_storage("memory" if storage is None and run_dir is None else storage, run_dir)
    state["storage_obj"] = storage_obj
    state["where"] = redact(storage_url) if storage_url != "memory" else "memory"
    base = state["base"]
    if state["new_study"]:
        base = state["base"] = _free_name(storage_obj, base, budget_list, n_trials, multi)
        state["new_study"] = False  # a retry resumes the study this call made
    plans = _plan_studies(base, budget_list, n_trials, multi)
    sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
    settings = {
        "space": space.name, "fingerprint": space.fingerprint, "objective": resolved.name,
        "objective_identity": resolved.identity,
        "sampler": sampler_name, "sampler_args": dict(sampler_args or {}), "seed": seed, "n_trials": n_trials,
        "n_startup": n_startup, "max_rejects": max_rejects, "strategy": "pareto" if multi else "constrained",
        "budgets": [str(b) for b in budget_list], "storage": redact(storage_url), "study_name": base,
        "code_version": code_version(),
        "start": (hashlib.sha256("\n".join(sorted(map(str, start))).encode()).hexdigest()[:16] + f" ({len(start)} "
                  "subnets)") if start else None,
    }
    where = state["where"]
    seeds = np.random.SeedSequence(seed).spawn(2 * len(plans))
    cache: dict[Arch, float] = {}
    studies, before = [], {}
    with _quiet_optuna():
        for i, (name, budget, objectives, target) in enumerate(plans):
            samp = _make_sampler(sampler, space, budget, cost_model, int(seeds[2 * i].generate_state(1)[0]),
                                 n_startup, dict(sampler_args or {}), multi)
            identity = _identity(space, resolved.identity, budget, settings)
            study = _open_study(storage_obj, name, space, objectives, settings, identity, samp, derived, where)
            if state["retry"]:
                _fail_own_running(study)
            studies.append(study)
            before[name] = _n_evaluated(study)
        _say_resumed(plans, before, where, progress if verbose is None else verbose)
        for study in studies:  # evaluations of every study of this search are free knowledge for all
            _fill_cache(study, space, cache)
        for i, ((name, budget, objectives, target), study) in enumerate(zip(plans, studies)):
            if not multi and len(plans) > 1:
                _warm_start(study, space, budget, cache, cost_model, seed)
            loop = StudyLoop(study, space, fn, budget, objectives, cost_model, cache, target, n_startup,
                             max_rejects, seed, np.random.default_rng(seeds[2 * i + 1]), start)
            with progress_bar(total=target, desc=f"search {budget}", unit="subnet", enabled=progress) as bar:
                loop.run(bar)
    # per study: subnets it held when this call started (0: a new study), not when a lost connection was retried
    settings["evaluated_before"] = state.setdefault("before", before)
    result = collect(space, studies, budget_list, settings, limits={name: target for name, _, _, target in plans})
    if run_dir is not None:
        result.save(Path(run_dir) / "search.json")
    return result


def _fail_own_running(study: optuna.Study) -> None:
    """After a lost storage connection: trials this process left running are not in flight any more."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(WORKER) == me:
            with suppress(ValueError, RuntimeError):
                study.tell(t.number, state=TrialState.FAIL)


def default_study_name(space: SearchSpace, objective_name: str, budgets: Sequence[Budget], seed: int) -> str:
    """`<space>-<objective>-<budgets>-seed<seed>`: searches that differ in these never share a study."""
    tag = "+".join(str(b) for b in budgets if b) or "unconstrained"
    return f"{space.name}-{objective_name}-{tag}-seed{seed}"


def _start_archs(space: SearchSpace, start: Sequence[Arch | str] | None) -> list[Arch]:
    """The distinct canonical subnets of `start`, or a one-line error naming the first that is not one of `space`."""
    if start is None:
        return []
    if isinstance(start, (str, Arch)) or not isinstance(start, Iterable):
        raise TypeError(f"start must be a list of subnets or their strings, got {type(start).__name__}")
    from predictors.base import as_archs

    return list(dict.fromkeys(space.canonical(a) for a in as_archs(space, start, "start subnet", "this search")))


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


# =========================================================================== studies
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


def _free_name(storage: BaseStorage, base: str, budgets: list[Budget], n_trials: int, multi: bool) -> str:
    """`base`, or `base-2`, `base-3`, ...: the first whose studies do not exist yet in `storage`."""
    taken = {s.study_name for s in storage.get_all_studies()}
    for k in range(1, 10_000):
        name = base if k == 1 else f"{base}-{k}"
        if not any(plan[0] in taken for plan in _plan_studies(name, budgets, n_trials, multi)):
            return name
    raise ValueError(f"no free study name like {base!r} in this storage")


# What defines a study: resuming it with a difference in any of these would mix two searches' results.
IDENTITY_KEYS = ("space", "objective", "budget", "strategy", "sampler", "sampler_args", "seed", "start")


def _identity(space: SearchSpace, objective: str, budget: Budget, settings: Mapping[str, Any]) -> dict[str, Any]:
    ident = {"space": f"{space.name} ({space.fingerprint})", "objective": objective, "budget": str(budget),
             "strategy": settings["strategy"], "sampler": settings["sampler"],
             "sampler_args": settings["sampler_args"], "seed": settings["seed"], "start": settings["start"]}
    return json.loads(json.dumps(ident, default=str))  # as storages give it back (tuples become lists)


def _open_study(storage: BaseStorage, name: str, space: SearchSpace, objectives: tuple[str, ...],
                settings: Mapping[str, Any], identity: Mapping[str, Any], sampler: optuna.samplers.BaseSampler,
                derived_name: bool, where: str) -> optuna.Study:
    directions = ["maximize"] + ["minimize"] * (len(objectives) - 1)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True,
                                    sampler=sampler)
    except ValueError as exc:
        raise ValueError(f"cannot open study {name!r}: {exc}") from None
    way_out = ("give another study name (study_name= / --study-name) or new_study=True (--new-study) for a new "
               "study, or the same settings to resume it")
    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "maximize"
                                  else optuna.study.StudyDirection.MINIMIZE for d in directions]:
        raise ValueError(f"study {name!r} in {where} has {len(study.directions)} objective(s); this search needs "
                         f"{objectives}: {way_out}")
    attrs = study.user_attrs
    if "fingerprint" in attrs and attrs["fingerprint"] != space.fingerprint:
        raise ValueError(f"study {name!r} in {where} belongs to space {attrs.get('space')!r} ({attrs['fingerprint']}),"
                         f" not {space.name!r} ({space.fingerprint}): {way_out}")
    stored = attrs.get("identity")
    if stored is not None:
        # An explicitly named study is how workers share one search: each brings its own seed.
        keys = [k for k in IDENTITY_KEYS if k in stored and not (k == "seed" and not derived_name)]
        diffs = [f"{k} {stored[k]!r}, not {identity[k]!r}" for k in keys if stored[k] != identity[k]]
        if diffs:
            raise ValueError(f"study {name!r} in {where} was made with {'; '.join(diffs)}: {way_out}")
        if stored.get("seed") != identity["seed"]:
            log.info("study %s: joined by a worker with seed %s (the study started with seed %s)", name,
                     identity["seed"], stored.get("seed"))
    elif "fingerprint" not in attrs:
        for k, v in settings.items():
            study.set_user_attr(k, v)
        study.set_user_attr("objectives", list(objectives))
        study.set_user_attr("identity", dict(identity))
    return study


def _n_evaluated(study: optuna.Study) -> int:
    return sum(t.user_attrs.get(ATTR, {}).get("status") == "evaluated"
               for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _say_resumed(plans: Sequence[tuple[str, Budget, tuple[str, ...], int]], before: Mapping[str, int], where: str,
                 verbose: bool) -> None:
    """Say which studies are resumed, how many subnets they hold and where they live; logged, printed if
    `verbose`."""
    for name, _, _, target in plans:
        n = before[name]
        if n == 0:
            continue
        if n >= target:
            msg = (f"study {name!r} ({where}) already has {n} evaluated subnets >= n_trials {target}: nothing to "
                   f"evaluate; the result holds its first {target}")
        else:
            msg = f"resuming study {name!r} ({where}): {n} subnets evaluated, {target - n} to go"
        log.info(msg)
        if verbose:
            print(msg, flush=True)


def _fill_cache(study: optuna.Study, space: SearchSpace, cache: dict[Arch, float]) -> None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        info = t.user_attrs.get(ATTR, {})
        if info.get("status") == "evaluated":
            cache.setdefault(space.canonical(Arch.from_str(space, info["arch"])), float(info["score"]))


def _warm_start(study: optuna.Study, space: SearchSpace, budget: Budget, cache: Mapping[Arch, float],
                costs: CostModel, seed: int) -> None:
    """Add every already evaluated subnet that fits `budget` and that the study lacks, as a known result."""
    present = {space.canonical(a) for t in study.get_trials(deepcopy=False)
               if (a := arch_from_trial(space, t)) is not None}
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
    feasible = BudgetCheck(budget, costs)  # samplers screen candidate pools with `feasible.many` in one batch
    if isinstance(sampler, str):
        samp = create_search_sampler(sampler, space, seed=seed, n_startup=n_startup, feasible=feasible, **args)
    else:
        samp = sampler
        if isinstance(samp, ArchSampler):
            samp.feasible = feasible
    if multi and not supports_multi_objective(samp):
        raise ValueError(f"sampler {sampler if isinstance(sampler, str) else samp} cannot drive the multi-objective "
                         "study of strategy='pareto'; use tpe, nsga2, gp or random, or strategy='constrained'")
    return samp


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs a line per trial at INFO; a search of hundreds of trials says what matters itself."""
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)
