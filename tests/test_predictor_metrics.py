"""Predictor metrics against hand-computed values; cross-validation, learning curves and `fit_predictors`."""

import math

import numpy as np
import pytest

from predictors import (
    coverage,
    create_predictor,
    cross_validate,
    kendall_tau,
    learning_curve,
    make_objective,
    precision_at_k,
    rmse,
    score_predictions,
    spearman,
    std_error_spearman,
)
from predictors.fitting import fit_predictors
from supernets import get_space


def test_rank_metrics_known_values():
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)  # 2 concordant, 1 discordant pair
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)  # 1 - 6 * 2 / (3 * 8)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert math.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))  # a constant prediction ranks nothing
    with pytest.raises(ValueError, match="pair up"):
        spearman([1, 2], [1, 2, 3])


def test_precision_at_k_and_rmse_known_values():
    y, p = [5, 4, 3, 2, 1], [5, 3, 4, 1, 2]
    assert precision_at_k(y, p, 2) == 0.5  # true top-2 {0, 1}, predicted {0, 2}
    assert precision_at_k(y, p, 3) == 1.0
    assert precision_at_k(y, p, 0.2) == 1.0  # 20% of 5 = the single best, found
    assert precision_at_k(y, y[::-1], 1) == 0.0
    assert rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))


def test_calibration_metrics_known_values():
    y, mean = np.zeros(4), np.array([0.1, -0.2, 0.3, -0.4])
    assert std_error_spearman(y, mean, [1, 2, 3, 4]) == pytest.approx(1.0)  # std ranks errors exactly
    assert std_error_spearman(y, mean, [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert coverage(y, mean, [0.1, 0.1, 0.1, 0.1]) == 0.5  # |err| <= 0.2 for the first two only
    m = score_predictions(y + [0, 1, 2, 3], [0, 1, 2, 3], [1, 1, 1, 1])
    assert m["kendall_tau"] == pytest.approx(1) and m["rmse"] == 0 and m["coverage"] == 1


@pytest.fixture(scope="module")
def data():
    space = get_space("mbv3_test")
    f = make_objective(space, "additive", 0.01, seed=0)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    return space, archs, np.array([f(a) for a in archs])


def test_cross_validate_predicts_every_subnet_out_of_fold(data):
    space, archs, y = data
    model = create_predictor("gp", space)
    cv = cross_validate(model, archs, y, folds=4, seed=0)
    assert len(cv.folds) == 4 and not model.fitted  # the given predictor is left untouched
    assert cv.oof_mean.shape == cv.oof_std.shape == (60,) and (cv.oof_std > 0).all()
    assert set(cv.summary) == {"kendall_tau", "spearman", "precision_at_k", "rmse", "std_error_spearman", "coverage"}
    assert cv.summary["kendall_tau"][0] > 0.4 and cv.pooled["kendall_tau"] > 0.4
    assert cv.pooled["kendall_tau"] == pytest.approx(kendall_tau(y, cv.oof_mean))
    again = cross_validate(model, archs, y, folds=4, seed=0)
    np.testing.assert_array_equal(again.oof_mean, cv.oof_mean)
    assert cv.as_dict()["summary"]["rmse"] == list(cv.summary["rmse"])
    with pytest.raises(ValueError, match="folds must be between 2 and"):
        cross_validate(model, archs, y, folds=1)


def test_learning_curve_improves_with_data(data):
    space, archs, y = data
    curve = learning_curve(create_predictor("gp", space), archs, y, sizes=(10, 40, 500), repeats=2, test_size=20)
    assert sorted(curve) == [10, 40]  # 500 leaves no test subnets: skipped
    assert curve[40]["kendall_tau"][0] > curve[10]["kendall_tau"][0]
    with pytest.raises(ValueError, match="too few"):
        learning_curve(create_predictor("gp", space), archs, y, sizes=(100,))


def test_fit_predictors_cross_validates_and_fits_each_model(data):
    space, archs, y = data
    out = fit_predictors(space, archs, y, models=("xgb", "gp"), folds=3, seed=0,
                         options={"xgb": {"n_models": 3, "n_rounds": 50}})
    assert set(out["predictors"]) == set(out["cv"]) == {"xgb", "gp"}
    assert out["predictors"]["xgb"].get_params()["n_models"] == 3
    assert all(p.fitted and p.n_train_ == 60 for p in out["predictors"].values())
    taus = {k: cv.summary["kendall_tau"][0] for k, cv in out["cv"].items()}
    assert out["best"] == max(taus, key=taus.get)
    assert fit_predictors(space, archs, y, models=("gp",), folds=0)["cv"]["gp"] is None


def test_cross_validation_refuses_a_fold_with_constant_training_scores():
    """9 subnets at 1.0 and one at 0.9: the fold holding out the 0.9 one has nothing to rank; a clear error."""
    from predictors import create_predictor
    from predictors.metrics import LowSpreadError
    from supernets import get_space

    space = get_space("nb201_test")
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(40)))[:10]
    scores = [1.0] * 9 + [0.9]
    with pytest.raises(LowSpreadError, match="fold .* all 8 training scores equal 1.0"):
        cross_validate(create_predictor("xgb", space), archs, scores, folds=5)
