"""What a search found: every evaluated subnet with its score and costs, the best per budget, the Pareto front.

Records come from the Optuna studies themselves (each evaluated trial stores its subnet string, score, costs and the
seed of the worker that ran it), so a result rebuilt from storage after a crash or from another worker is complete.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

import numpy as np

from supernets.files import atomic_write_bytes
from supernets.registry import space_from_dict, space_to_dict
from supernets.space import Arch, SearchSpace

from .budget import Budget
from .space import TRIAL_ATTR

__all__ = ["SearchRecord", "SearchResult", "RESULT_FORMAT", "collect", "pareto_front", "pareto_mask", "best_within"]

T = TypeVar("T")

RESULT_FORMAT = "oneshot-search"


@dataclass(frozen=True)
class SearchRecord:
    """One evaluated subnet: its score (higher is better), costs (`macs`, `flops`, `params`, ...) and provenance."""

    arch: Arch
    score: float
    costs: Mapping[str, float]
    trial: int  # trial number in `study`
    study: str
    seed: int | None = None  # seed of the search call (worker) that evaluated it
    query: int = 0  # 0-based position among the distinct subnets this search evaluated

    @property
    def macs(self) -> float:
        return self.costs["macs"]

    @property
    def flops(self) -> float:
        return self.costs["flops"]

    @property
    def params(self) -> float:
        return self.costs["params"]

    def to_dict(self) -> dict[str, Any]:
        return {"arch": str(self.arch), "score": self.score, **dict(self.costs), "trial": self.trial,
                "study": self.study, "seed": self.seed, "query": self.query}

    def __str__(self) -> str:
        return (f"{self.score:.4f}  flops={self.flops:,.0f}  params={self.params:,.0f}  "
                f"(trial {self.trial} of {self.study})  {self.arch}")


class SearchResult:
    """Evaluated subnets of one search call, in query order, with the settings that produced them.

    `studies` are the Optuna studies (None after `load`); `budgets` the search's budgets, tightest first.
    """

    def __init__(self, space: SearchSpace, records: Sequence[SearchRecord], budgets: Sequence[Budget] = (),
                 settings: Mapping[str, Any] | None = None, studies: Sequence[Any] | None = None) -> None:
        self.space = space
        self.records = list(records)
        self.budgets = list(budgets)
        self.settings = dict(settings or {})
        self.studies = list(studies) if studies is not None else None
        self.path: Path | None = None  # the file it was last saved to or loaded from (None: only in memory)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"SearchResult({self.space.name}, {len(self.records)} subnets, budgets={[str(b) for b in self.budgets]})"

    # ------------------------------------------------------------------ queries
    def _cost_keys(self) -> list[str]:
        return list(self.records[0].costs) if self.records else ["macs", "flops", "params"]

    def feasible(self, budget: Budget | None = None, **limits: float) -> list[SearchRecord]:
        """Records that fit `budget` (or the limits given as keywords, e.g. `flops=1e8`)."""
        b = _budget(budget, limits)
        unknown = [k for k in b.keys if k not in self._cost_keys()]
        if unknown:
            raise ValueError(f"unknown cost(s) {unknown} in budget {b}; records have {self._cost_keys()}")
        return [r for r in self.records if b.admits(r.costs)]

    def best(self, budget: Budget | None = None, **limits: float) -> SearchRecord:
        """The highest-scoring subnet within the budget (ties: the cheaper in FLOPs, then the earlier found).

        `result.best(flops=100e6)`; with no budget, the best overall. Raises ValueError when no evaluated subnet
        fits, naming the cheapest one evaluated.
        """
        b = _budget(budget, limits)
        fits = self.feasible(b)
        if not fits:
            if not self.records:
                raise ValueError("the search evaluated no subnet yet")
            cheapest = min(self.records, key=lambda r: r.flops)
            raise ValueError(f"no evaluated subnet fits budget {b}; the cheapest evaluated has "
                             + ", ".join(f"{k}={cheapest.costs[k]:,.0f}" for k in self._cost_keys()))
        best = best_within(sorted(fits, key=lambda r: r.query), b, lambda r: r.score, lambda r: r.costs)
        assert best is not None  # every record of `fits` fits
        return best

    def best_per_budget(self) -> dict[str, SearchRecord | None]:
        """`str(budget) -> best record` for each of the search's budgets (None where nothing fits)."""
        out: dict[str, SearchRecord | None] = {}
        for b in self.budgets or [Budget()]:
            try:
                out[str(b)] = self.best(b)
            except ValueError:
                out[str(b)] = None
        return out

    def pareto(self, cost: str = "flops") -> list[SearchRecord]:
        """Records no other record beats on both score (higher) and `cost` (lower), sorted by cost ascending."""
        if cost not in self._cost_keys():
            raise ValueError(f"unknown cost {cost!r}; records have {self._cost_keys()}")
        idx = pareto_front([r.costs[cost] for r in self.records], [r.score for r in self.records])
        return [self.records[i] for i in idx]

    def budget_of(self, study: str) -> Budget | None:
        """The budget a study of this search ran under (`name[flops<=4.5e+06]`, or the only budget of a one-study
        search); None for a Pareto study, which covers every budget at once."""
        for b in self.budgets:
            if study.endswith(f"[{b}]"):
                return b
        if len(self.budgets) == 1 and not study.endswith("[pareto]"):
            return self.budgets[0]
        return None

    def best_so_far(self) -> list[float]:
        """Best score after each query (index i: after i + 1 distinct subnets), ignoring budgets."""
        out, top = [], -math.inf
        for r in sorted(self.records, key=lambda r: r.query):
            top = max(top, r.score)
            out.append(top)
        return out

    # ------------------------------------------------------------------ files
    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts (arch string, score, costs, trial, study, seed, query), one per evaluated subnet."""
        return [r.to_dict() for r in self.records]

    def to_json(self) -> dict[str, Any]:
        best = {k: (None if r is None else r.to_dict()) for k, r in self.best_per_budget().items()}
        return {"format": RESULT_FORMAT, "space": space_to_dict(self.space), "fingerprint": self.space.fingerprint,
                "settings": self.settings, "budgets": [b.as_dict() for b in self.budgets], "best": best,
                "pareto": [r.to_dict() for r in self.pareto()] if self.records else [],
                "records": self.to_records()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON (atomically); returns the path."""
        path = Path(path)
        atomic_write_bytes(path, json.dumps(self.to_json(), indent=1, default=str).encode())
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SearchResult:
        """Read a result written by `save` (without the live studies); anything else is a one-line ValueError."""
        try:
            data = json.loads(Path(path).read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise ValueError(f"{str(path)!r} is not a oneshot search result (no \"format\": \"{RESULT_FORMAT}\"; "
                             "`search(..., run_dir=DIR)` writes DIR/search.json)")
        space = space_from_dict(data["space"])
        keys = ("arch", "score", "trial", "study", "seed", "query")
        records = [SearchRecord(Arch.from_str(space, d["arch"]), d["score"],
                                {k: v for k, v in d.items() if k not in keys}, d["trial"], d["study"], d["seed"],
                                d["query"]) for d in data["records"]]
        budgets = [Budget.of(**b) for b in data["budgets"]]
        result = cls(space, records, budgets, data["settings"])
        result.path = Path(path)
        return result

    def summary(self) -> str:
        """A short text table: the best subnet per budget."""
        lines = [f"{len(self.records)} subnets evaluated in space {self.space.name!r}"]
        for b, r in self.best_per_budget().items():
            lines.append(f"  {b:<28} " + ("no evaluated subnet fits" if r is None else str(r)))
        return "\n".join(lines)


def _budget(budget: Budget | None, limits: Mapping[str, float]) -> Budget:
    if budget is not None and limits:
        raise TypeError("give a Budget or keyword limits, not both")
    if budget is not None:
        return budget
    return Budget.of(**limits)


# --------------------------------------------------------------------------- building and choosing
def collect(space: SearchSpace, studies: Sequence[Any], budgets: Sequence[Budget] = (),
            settings: Mapping[str, Any] | None = None, limits: Mapping[str, int] | None = None) -> SearchResult:
    """The evaluated subnets of some studies (e.g. reopened from storage) as a `SearchResult`.

    `limits` caps the subnets taken from a study (by name) to its first ones: a search asked for 20 queries
    reports 20, also from a study that went on to evaluate more.
    """
    from optuna.trial import TrialState

    rows = []
    for si, study in enumerate(studies):
        mine = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            info = t.user_attrs.get(TRIAL_ATTR, {})
            if info.get("status") != "evaluated":
                continue
            stamp = t.datetime_complete.timestamp() if t.datetime_complete else math.inf
            mine.append((stamp, si, t.number, info, study.study_name))
        mine.sort(key=lambda r: r[:3])
        rows += mine[:(limits or {}).get(study.study_name, len(mine))]
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


def pareto_front(cost: Sequence[float], score: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both lower cost and higher score, by cost ascending.

    The same point twice is kept twice (neither dominates the other).
    """
    front: list[int] = []
    top, top_cost = -math.inf, math.nan
    for i in sorted(range(len(cost)), key=lambda i: (cost[i], -score[i])):
        if score[i] > top:
            front.append(i)
            top, top_cost = score[i], cost[i]
        elif score[i] == top and cost[i] == top_cost:
            front.append(i)
    return front


def pareto_mask(cost: Sequence[float], score: Sequence[float]) -> np.ndarray:
    """`pareto_front` as a boolean mask over the points (for plotting)."""
    mask = np.zeros(len(cost), bool)
    mask[pareto_front(list(map(float, cost)), list(map(float, score)))] = True
    return mask


def best_within(items: Sequence[T], budget: Budget, score: Callable[[T], float],
                costs: Callable[[T], Mapping[str, float]]) -> T | None:
    """The highest-scoring item whose costs fit `budget` (ties: fewer FLOPs, then the earlier item); None if none
    fits. The one rule for choosing a subnet per budget, used by `SearchResult.best` and the pipeline."""
    best, best_key = None, None
    for i, item in enumerate(items):
        c = costs(item)
        if not budget.admits(c):
            continue
        key = (score(item), -c.get("flops", 0.0), -i)
        if best_key is None or key > best_key:
            best, best_key = item, key
    return best
