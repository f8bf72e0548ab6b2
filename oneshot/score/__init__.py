"""Stage 3, scoring: what a subnet is worth and what it costs.

`bn.py` re-estimates BN statistics per subnet; `evaluate.py` scores subnets of a supernet on the holdout split
into a result table; `latency.py` times subnets and fits the latency model budgets use; `objectives.py` builds
the `arch -> score` callables that search maximizes (the only place search's objectives load checkpoints).
"""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
