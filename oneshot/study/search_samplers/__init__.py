"""Search samplers: Optuna samplers over a `SearchSpace`, found by name (`create_search_sampler("rea", space)`).

Not to be confused with path samplers (`oneshot.training.path_samplers`), which choose the subnets a supernet trains
on. `base.py` holds the protocol (`ArchSampler`) and the registry; each sampler is one module: `random_search.py`,
`evolution.py` (rea), `predictor.py` (Bayesian optimization with our predictors), `optuna_samplers.py` (tpe, gp,
nsga2).
"""

from .base import (
    ArchSampler,
    History,
    SpaceExhausted,
    all_archs,
    create_search_sampler,
    list_search_samplers,
    mutate,
    neighbours,
    random_unseen,
    register_search_sampler,
    sample_many,
    supports_multi_objective,
)
# Imported in registration order (the order `list_search_samplers` gives): tpe, gp, nsga2, random, rea, predictor.
from . import optuna_samplers  # noqa: F401,I001  (registers tpe, gp and nsga2)
from .random_search import RandomArchSampler  # noqa: I001
from .evolution import RegularizedEvolutionSampler
from .predictor import ACQUISITIONS, PredictorSampler, expected_improvement, upper_confidence_bound

__all__ = [
    "ArchSampler", "RandomArchSampler", "RegularizedEvolutionSampler", "PredictorSampler", "SpaceExhausted",
    "History", "mutate", "neighbours", "random_unseen", "all_archs", "sample_many", "register_search_sampler",
    "create_search_sampler", "list_search_samplers", "supports_multi_objective", "expected_improvement",
    "upper_confidence_bound", "ACQUISITIONS",
]
