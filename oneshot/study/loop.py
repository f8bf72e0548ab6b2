"""The loop that drives one study: ask, check the budget and the cache, evaluate, tell.

Our own loop over `study.ask()` / `study.tell()` rather than `study.optimize`: a subnet over budget or evaluated
before must be told without calling the objective, the first subnets (and the way out of a stuck sampler) are
random new subnets added as finished trials, and the stopping rule counts distinct subnets evaluated by every
worker of the study (`n_trials` is the study's target, not a per-call increment), none of which `optimize` with
callbacks expresses without re-asking inside the objective.

Worker liveness is checked by host:pid (`WORKER` on each running trial) rather than Optuna heartbeats: heartbeats
need an RDB or journal storage created with `heartbeat_interval` and fail a dead worker's trial only after the
grace period, so a search re-run right after a kill would count the dead trial as in flight; the pid check closes
it at once on the same machine and works with every storage, in-memory included. A trial is claimed (its worker
written) right after `study.ask()` creates it and before the sampler proposes, so a process killed while its
sampler is proposing leaves a trial that the next run closes instead of waiting for it.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import socket
import time
from collections import deque
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from supernets.sampling import SpaceExhausted, random_unseen
from supernets.space import Arch, SearchSpace

from .budget import Budget, CostModel
from .search_samplers.base import neighbours
from .space import TRIAL_ATTR, arch_from_trial, suggest_arch, trial_for

__all__ = ["StudyLoop", "WORKER"]

log = logging.getLogger("oneshot.search")

ATTR = TRIAL_ATTR  # user attr holding {arch, status, score, cost, seed} on every trial we tell
WORKER = "oneshot_worker"  # user attr: "host:pid" of the process that ran the trial
# A running trial without a worker is one `ask()` just inserted (claimed milliseconds later); one older than this
# was left by a process killed in between. Another host's trial still being proposed is waited for this long.
UNCLAIMED_S, OTHER_HOST_S = 10.0, 60.0
NEAR_CHEAPEST_LIMIT = 20_000  # subnets visited at most when listing those around the cheapest one


class StudyLoop:
    """Ask, check the budget and the cache, evaluate, tell: until the study holds `target` evaluated subnets."""

    def __init__(self, study: optuna.Study, space: SearchSpace, objective: Callable[[Arch], float], budget: Budget,
                 objectives: tuple[str, ...], costs: CostModel, cache: dict[Arch, float], target: int,
                 n_startup: int, max_rejects: int, seed: int, rng: np.random.Generator,
                 start: list[Arch] | None = None) -> None:
        self.study, self.space, self.objective, self.budget = study, space, objective, budget
        # subnets evaluated before any other (canonical; in a seeded order, so workers rarely take the same one)
        self.start = [start[i] for i in rng.permutation(len(start))] if start else []
        self.cost_keys = objectives[1:]  # minimized alongside the score in a multi-objective study
        self.costs, self.cache, self.target = costs, cache, target
        self.n_startup, self.max_rejects, self.seed, self.rng = n_startup, max_rejects, seed, rng
        self._synced: set[int] = set()
        self._scan_from = 0
        self.n_evaluated = 0  # subnets evaluated in this study, by any worker
        self.n_known = 0  # feasible subnets with a score in this study (evaluated or warm start)
        # best: the progress line's, over the subnets evaluated for this budget only; the warm start's subnets from
        # other budgets would open each budget's bar at the previous budget's best.
        self.worst, self.best = math.inf, -math.inf
        self._near: list[Arch] | None = None  # feasible subnets around the cheapest, once random draws fail
        self._near_complete = False  # the listing holds every subnet so reachable (none was cut off)
        self._sampler_stuck = False  # the sampler found no new subnet within the budget: draw them here

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
                    in_flight.add(self.space.canonical(a))
            elif t.number not in self._synced and t.state.is_finished():
                self._synced.add(t.number)
                info = t.user_attrs.get(ATTR, {})
                status = info.get("status")
                self.n_evaluated += status == "evaluated"
                if status in ("evaluated", "cached") and t.state == TrialState.COMPLETE:
                    self.n_known += 1
                    self.worst = min(self.worst, float(info["score"]))
                    if status == "evaluated":
                        self.best = max(self.best, float(info["score"]))
                    self.cache.setdefault(self.space.canonical(Arch.from_str(self.space, info["arch"])),
                                          float(info["score"]))
        return n_in_flight, in_flight

    def close_orphans(self) -> int:
        """Fail trials left RUNNING by a dead process of this machine (a killed search); returns how many."""
        n = sum(self._close_if_orphan(t) for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if n:
            log.info("study %s: closed %d trial(s) left running by a killed search", self.study.study_name, n)
        return n

    def _close_if_orphan(self, t: optuna.trial.FrozenTrial) -> bool:
        """Fail `t` when its worker is a dead process of this machine, or when it was never claimed."""
        worker = t.user_attrs.get(WORKER)
        if worker is None:
            age = (datetime.datetime.now() - t.datetime_start).total_seconds() if t.datetime_start else math.inf
            dead = age > UNCLAIMED_S and arch_from_trial(self.space, t) is None
        else:
            host, _, pid = str(worker).rpartition(":")
            dead = host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))
        if not dead:
            return False
        try:
            self.study.tell(t.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # finished meanwhile
            return False
        return True

    def _proposing(self, t: optuna.trial.FrozenTrial, now: datetime.datetime) -> bool:
        """Whether running trial `t`, without a subnet yet, belongs to a live worker whose sampler is proposing."""
        if self._close_if_orphan(t):
            return False
        age = (now - t.datetime_start).total_seconds() if t.datetime_start else math.inf
        worker = t.user_attrs.get(WORKER)
        if worker is None:
            return age < UNCLAIMED_S
        return str(worker).rpartition(":")[0] == socket.gethostname() or age < OTHER_HOST_S

    def _evaluate_random(self, arch: Arch, source: str = "random") -> None:
        c = self.costs(arch)
        score = self._score(arch)
        info = {"arch": str(arch), "cost": c, "seed": self.seed, "status": "evaluated", "score": score,
                "source": source}
        self.study.add_trial(trial_for(arch, [score, *(c[k] for k in self.cost_keys)], {ATTR: info},
                                       self.budget.violations(c)))

    def _score(self, arch: Arch) -> float:
        value = self.objective(arch)
        try:
            if value is None or isinstance(value, (str, bytes, bool)):
                raise TypeError
            score = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"objective returned {value!r} ({type(value).__name__}) for subnet {str(arch)!r}; it "
                            "must return a number") from None
        if not math.isfinite(score):
            raise ValueError(f"objective returned {score} for subnet {str(arch)!r}; it must return a finite number")
        self.cache[self.space.canonical(arch)] = score
        return score

    def _claimed_earlier(self, number: int, arch: Arch, wait_s: float = 5.0) -> bool:
        """Whether a trial numbered before `number` (another worker's) is evaluating or has evaluated `arch`.

        Checked after this trial's parameters are written, and the lower trial number wins. A lower-numbered trial
        still being suggested (its worker's sampler is proposing) is waited for, up to `wait_s`, so that two
        workers proposing one subnet at the same moment never both evaluate it; a trial whose worker is dead
        (killed while proposing) is closed instead of waited for.
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
                    pending |= t.state == TrialState.RUNNING and self._proposing(t, now)
                elif self.space.canonical(other) == arch and (t.state == TrialState.RUNNING or t.user_attrs.get(ATTR, {}).get("status")
                                        in ("evaluated", "cached", "duplicate")):
                    return True
            if not pending or time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def feasible(self, arch: Arch) -> bool:
        return self.budget.admits(self.costs(arch))

    def next_start(self, in_flight: set[Arch]) -> Arch | None:
        """The next of the `start` subnets that fits the budget and is neither known nor in flight; None when none
        is left."""
        while self.start:
            arch = self.start.pop()
            if arch not in self.cache and arch not in in_flight and self.feasible(arch):
                return arch
        return None

    def random_new(self, seen: set[Arch]) -> Arch:
        """A random subnet that fits the budget and whose network (canonical form) is not in `seen`; raises
        SpaceExhausted when none is found.

        Uniform draws first; when they find nothing (a budget only a few subnets meet: of 1.5e10 mbv3_tiny subnets,
        random draws never hit the handful within 1,000 FLOPs of the cheapest), a draw from the feasible subnets
        connected to the cheapest one by single-decision changes, listed once.
        """
        canonical = self.space.canonical

        def new_and_feasible(a: Arch) -> bool:
            return canonical(a) not in seen and self.feasible(a)

        if self._near is None:
            try:
                return random_unseen(self.space, self.rng, seen, new_and_feasible)
            except SpaceExhausted:
                self._near = self._feasible_near_cheapest()
                log.info("study %s: random draws found no new subnet within %s; listed %d around the cheapest",
                         self.study.study_name, self.budget, len(self._near))
        pool = [a for a in self._near if canonical(a) not in seen]
        if pool:
            return pool[int(self.rng.integers(len(pool)))]
        if self._near_complete:
            raise SpaceExhausted(f"all {len(self._near)} subnets around the cheapest within the budget are evaluated")
        return random_unseen(self.space, self.rng, seen, new_and_feasible)  # the listing was cut short: try again

    def _feasible_near_cheapest(self) -> list[Arch]:
        """Feasible subnets reachable from the cheapest by single-decision changes through feasible subnets
        (breadth first, at most `NEAR_CHEAPEST_LIMIT` visited): all of them for a budget just above the cheapest."""
        start = self.space.smallest()
        if not self.feasible(start):
            return []
        visited, queue, out = {start}, deque([start]), [start]
        while queue and len(visited) < NEAR_CHEAPEST_LIMIT:
            new = [b for b in dict.fromkeys(neighbours(queue.popleft())) if b not in visited]
            visited.update(new)
            for b, c in zip(new, self.costs.many(new)):  # one batch per subnet's neighbours (a latency model)
                if self.budget.admits(c):
                    out.append(b)
                    queue.append(b)
        self._near_complete = not queue
        return out

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
            first = self.next_start(in_flight) if self.start else None
            if (first is not None or self.n_known + n_in_flight < self.n_startup or rejects >= self.max_rejects
                    or self._sampler_stuck):
                # The start subnets, then startup, or a sampler stuck on old or over-budget subnets: a random new
                # one that fits, evaluated here and added as a finished trial (one atomic insert; `enqueue_trial`
                # would let two workers on SQLite pop the same waiting trial).
                try:
                    arch = first if first is not None else self.random_new(set(self.cache) | in_flight)
                except SpaceExhausted as exc:
                    log.info("study %s: %s", self.study.study_name, exc)
                    break
                self._evaluate_random(arch, "random" if first is None else "start")
                done_here += 1
                rejects = 0
                continue
            trial = self.study.ask()
            # Claimed before the sampler proposes (lazily, inside suggest): a re-run closes it if this process dies.
            trial.set_user_attr(WORKER, _worker_id())
            try:
                arch = suggest_arch(trial, self.space)
            except SpaceExhausted as exc:
                # The sampler's own draws found nothing new within the budget: the loop's draws (which list the
                # subnets around the cheapest) take over; the search ends only when those find nothing either.
                self.study.tell(trial, state=TrialState.FAIL)
                log.info("study %s: sampler: %s; drawing subnets within the budget directly", self.study.study_name,
                         exc)
                self._sampler_stuck = True
                continue
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
            network = self.space.canonical(arch)  # equivalent spellings of one network are one evaluation
            if network in self.cache or network in in_flight or self._claimed_earlier(trial.number, network):
                # Served from the cache (told as complete with the known score, so the sampler's model sees it
                # again: measured better for TPE than telling it pruned), or being evaluated by another worker
                # right now (pruned: no score yet). Not evaluated again either way.
                self.sync()
                known = self.cache.get(network)
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
