"""Search defaults, importable without Optuna or torch (the CLI shows them in `oneshot search --help`)."""

from __future__ import annotations

__all__ = ["STRATEGIES", "DEFAULT_STRATEGY", "DEFAULT_SAMPLER", "DEFAULT_PARETO_SAMPLER", "SAMPLER_NAMES",
           "default_sampler"]

STRATEGIES = ("constrained", "pareto")
DEFAULT_STRATEGY = "constrained"  # one constrained study per budget: better per query in our benchmark
# Measured best per query on the nb201 tables (benchmarks/bench_search.py, 20 seeds): beats random, REA and plain
# TPE at 25, 50 and 100 queries on all three tables; TPE with our loop ties REA at 100 queries on two of them.
DEFAULT_SAMPLER = "predictor"
DEFAULT_PARETO_SAMPLER = "tpe"  # multi-objective studies: the predictor sampler is single-objective
# The shipped search samplers, for help texts only: `search_samplers.list_search_samplers()` is the registry
# (a test checks the two agree).
SAMPLER_NAMES = ("tpe", "gp", "nsga2", "random", "rea", "predictor")


def default_sampler(strategy: str = "constrained") -> str:
    """The sampler used when none is named: measured best per query (benchmarks/bench_search.py)."""
    return DEFAULT_PARETO_SAMPLER if strategy == "pareto" else DEFAULT_SAMPLER
