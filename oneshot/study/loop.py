"""The loop that drives one study: ask, check the budget and the cache, evaluate, tell.

Our own loop over `study.ask()` / `study.tell()` rather than `study.optimize`: a subnet over budget or evaluated
before must be told without calling the objective, the first subnets (and the way out of a stuck sampler) are
random new subnets added as finished trials, and the stopping rule counts distinct subnets evaluated by every
worker of the study (`n_trials` is the study's target, not a per-call increment), none of which `optimize` with
callbacks expresses without re-asking inside the objective.

Worker liveness is checked by host:pid (`WORKER` on each running trial) rather than Optuna heartbeats: heartbeats
need an RDB or journal storage created with `heartbeat_interval` and fail a dead worker's trial only after the
grace period, so a search re-run right after a kill would count the dead trial as in flight; the pid check closes
it at once on the same machine and works with every storage, in-memory included.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import socket
import time
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from supernets.sampling import SpaceExhausted, random_unseen
from supernets.space import Arch, SearchSpace

from .budget import Budget, CostModel
from .space import TRIAL_ATTR, arch_from_trial, suggest_arch, trial_for

__all__ = ["StudyLoop", "WORKER"]

log = logging.getLogger("oneshot.search")

ATTR = TRIAL_ATTR  # user attr holding {arch, status, score, cost, seed} on every trial we tell
WORKER = "oneshot_worker"  # user attr: "host:pid" of the process that ran the trial


class StudyLoop:
    """Ask, check the budget and the cache, evaluate, tell: until the study holds `target` evaluated subnets."""

    def __init__(self, study: optuna.Study, space: SearchSpace, objective: Callable[[Arch], float], budget: Budget,
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
            elif t.number not in self._synced and t.state.is_finished():
                self._synced.add(t.number)
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
