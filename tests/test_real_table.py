"""Predictors and the predictor sampler on a real table (NAS-Bench-Macro), skipped when the table is absent.

Bounds come from the table's published references, not from our own runs: a scikit-learn GP on one-hot
features reaches Kendall tau 0.81 with 100 training networks, and random search finds 92.85% on average
within 50 networks (SOURCE.md next to the table).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna
import pytest

from oneshot.score.tabular import TabularBenchmark
from oneshot import search
from predictors import create_predictor, kendall_tau

REAL = Path(os.environ.get("NAS_BENCH_MACRO", "/work/shared/data/nas-bench-macro/nas-bench-macro_cifar10.json"))
pytestmark = pytest.mark.skipif(not REAL.is_file(), reason=f"NAS-Bench-Macro table not at {REAL}")
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def table():
    return TabularBenchmark.load(REAL, "macro")


def test_gp_ranks_held_out_networks_at_least_as_well_as_the_published_gp(table):
    archs, y = table.to_arrays("mean_acc")  # one spelling per network
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:100], order[100:1100]
    taus = {}
    for transform in ("rank", "standard"):
        model = create_predictor("gp", table.space, seed=0, target_transform=transform)
        model.fit([archs[i] for i in train], y[train])
        taus[transform] = kendall_tau(y[test], model.predict([archs[i] for i in test])[0])
    assert taus["rank"] > 0.81 - 0.03  # the reference, less three times its spread over training sets
    # The long low tail (45% to 93%) is why the rank warp is the default: standardized targets rank worse.
    assert taus["rank"] > taus["standard"]


def test_default_search_beats_random_search_on_the_real_table(table):
    result = search(table.space, table.objective("mean_acc"), n_trials=50, seed=0, storage="memory",
                    study_name="real")
    # Above random search's published mean at 50 networks by more than its spread over seeds (0.17); the
    # optimum is 93.13, so this asks for a network in the top ~0.1 points.
    assert max(r.score for r in result.records) > 92.85 + 0.17
