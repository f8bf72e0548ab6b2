"""Stage 5, study: budgeted search over a space with Optuna.

`space.py` maps a `SearchSpace` to Optuna distributions and trials; `budget.py` holds cost limits and the cost
model; `search_samplers/` the samplers, one per module; `storage.py` opens storages from URLs; `loop.py` drives one
study (ask, check, evaluate, tell); `search.py` is `search(...)`, planning a study per budget; `results.py` is
what a search found (best per budget, Pareto front). The objective comes from `oneshot.score.objectives` or the
user: nothing here loads a checkpoint.
"""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
